"""Honest membership-inference statistics: ROC/AUC, rates at low FPR, intervals, ε bounds, gates.

Every number a gate looks at carries an interval (METHOD.md §6): Clopper–Pearson for rates, DeLong
or a stratified bootstrap for AUC. Gates decide on an interval end, never on the point alone, so a CI
run does not flip between pass and fail on sampling noise. Only numpy and scipy are needed here:
these functions score any attack, whatever framework trained the model.

Conventions: a *score* is higher for "more likely a member"; *membership* is 1 for members and 0 for
non-members; a decision at threshold ``t`` predicts "member" when ``score >= t``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Optional

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval of nominal coverage ``level``."""

    value: float
    low: float
    high: float
    level: float = 0.95
    method: str = ""

    def __post_init__(self) -> None:
        for name in ("value", "low", "high", "level"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict[str, Any]:
        return {k: json_float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def format(self, percent: bool = False, digits: int = 3) -> str:
        scale, unit = (100.0, "%") if percent else (1.0, "")
        d = max(digits - 2, 1) if percent else digits
        return f"{self.value * scale:.{d}f}{unit} [{self.low * scale:.{d}f}, {self.high * scale:.{d}f}]"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class RocCurve:
    """ROC points ordered by decreasing threshold, starting at (0, 0) with threshold +inf."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    def to_dict(self) -> dict[str, list[Optional[float]]]:
        return {name: [json_float(float(v)) for v in arr] for name, arr in (("fpr", self.fpr), ("tpr", self.tpr), ("thresholds", self.thresholds))}


@dataclass(frozen=True)
class RateAtFpr:
    """TPR at the loosest threshold whose empirical FPR does not exceed ``target_fpr``.

    ``reliable`` is False when the evaluation has too few non-members for the target FPR to mean
    anything (fewer than ``min_false_positives`` expected false positives); ``note`` says why.
    """

    target_fpr: float
    tpr: Interval
    achieved_fpr: float
    threshold: float
    reliable: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fpr": self.target_fpr,
            "tpr": self.tpr.to_dict(),
            "achieved_fpr": json_float(self.achieved_fpr),
            "threshold": json_float(self.threshold),
            "reliable": self.reliable,
            "note": self.note,
        }


@dataclass(frozen=True)
class EpsilonBound:
    """Empirical lower bound on ε of (ε, δ)-DP, holding with probability ≥ ``level`` (see :func:`epsilon_lower_bound`)."""

    value: float
    delta: float
    level: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": json_float(self.value), "delta": self.delta, "level": self.level, "threshold": json_float(self.threshold)}


# --- rates --------------------------------------------------------------------------------------
def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> Interval:
    """Exact binomial interval: never narrower than the truth, so never flatters an attack or a model."""
    if trials <= 0:
        return Interval(float("nan"), 0.0, 1.0, level, "clopper-pearson")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} outside [0, {trials}]")
    alpha = 1.0 - level
    low = 0.0 if successes == 0 else float(stats.beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return Interval(successes / trials, low, high, level, "clopper-pearson")


# --- ROC and AUC --------------------------------------------------------------------------------
def _check_binary(scores: np.ndarray, membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(membership).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} membership labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("membership must be 0 (non-member) or 1 (member)")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, y.astype(bool)


def roc_curve(scores: np.ndarray, membership: np.ndarray, drop_intermediate: bool = False) -> RocCurve:
    """The ROC, point for point as ``sklearn.metrics.roc_curve`` computes it (one point per distinct score).

    ``drop_intermediate`` removes collinear points exactly as scikit-learn does; the metrics in this
    module read the full curve.
    """
    s, y = _check_binary(scores, membership)
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[ends].astype(np.float64)
    fps = 1.0 + ends - tps
    thresholds = s[ends]
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps, thresholds = np.r_[0.0, tps], np.r_[0.0, fps], np.r_[np.inf, thresholds]
    n_pos, n_neg = tps[-1], fps[-1]
    fpr = fps / n_neg if n_neg > 0 else np.full_like(fps, np.nan)
    tpr = tps / n_pos if n_pos > 0 else np.full_like(tps, np.nan)
    return RocCurve(fpr, tpr, thresholds)


def auc(scores: np.ndarray, membership: np.ndarray) -> float:
    """Area under the ROC = P(member score > non-member score) + ½ P(tie) (Mann–Whitney)."""
    s, y = _check_binary(scores, membership)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - m * (m + 1) / 2) / (m * n))


def _delong_components(s: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components (Sun & Xu 2014 fast algorithm, midranks handle ties)."""
    pos, neg = s[y], s[~y]
    m, n = pos.size, neg.size
    ranks_all = stats.rankdata(np.r_[pos, neg])
    ranks_pos, ranks_neg = stats.rankdata(pos), stats.rankdata(neg)
    auc_value = (ranks_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v_pos = (ranks_all[:m] - ranks_pos) / n  # per member: fraction of non-members it beats
    v_neg = 1.0 - (ranks_all[m:] - ranks_neg) / m  # per non-member: fraction of members beating it
    return float(auc_value), v_pos, v_neg


def delong_interval(scores: np.ndarray, membership: np.ndarray, level: float = 0.95) -> Interval:
    """AUC with DeLong's analytic normal interval, clipped to [0, 1]; fast enough for every test run."""
    s, y = _check_binary(scores, membership)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return Interval(auc(s, y) if m and n else float("nan"), 0.0, 1.0, level, "delong")
    value, v_pos, v_neg = _delong_components(s, y)
    se = math.sqrt(np.var(v_pos, ddof=1) / m + np.var(v_neg, ddof=1) / n)
    z = stats.norm.ppf(0.5 + level / 2)
    return Interval(value, max(0.0, value - z * se), min(1.0, value + z * se), level, "delong")


MIN_SLICE_ROWS = 30  # members and non-members each: below it a slice's AUC is shown but flagged and never ranked


def small_sample_auc_interval(scores: np.ndarray, membership: np.ndarray, level: float = 0.95) -> Interval:
    """AUC with an interval that stays honest on a few rows (per-class slices).

    DeLong's normal interval collapses to a point at perfect separation: 20 members and 20
    non-members with AUC 1 give [1, 1]. The variance of the Mann–Whitney AUC is at most
    A(1 − A)/min(m, n) (Birnbaum and Klose, 1957), so the AUC is treated as a proportion of min(m, n)
    trials and given its exact Clopper–Pearson interval; the result is the hull of that and DeLong's.
    """
    s, y = _check_binary(scores, membership)
    m, n = int(y.sum()), int((~y).sum())
    delong = delong_interval(s, y, level)
    if not (m and n):
        return delong
    trials = min(m, n)
    exact = clopper_pearson(int(round(delong.value * trials)), trials, level)
    return Interval(delong.value, min(delong.low, exact.low), max(delong.high, exact.high), level, "delong+exact")


def delong_difference(scores_a: np.ndarray, scores_b: np.ndarray, membership: np.ndarray, level: float = 0.95) -> Interval:
    """AUC(a) − AUC(b) for two attacks or two models scored on the *same* samples (paired DeLong).

    Pairing matters: the same samples make the two AUCs correlated, and ignoring that would make
    "the compressed model leaks no more than the dense parent" far harder to show than it is.
    """
    sa, y = _check_binary(scores_a, membership)
    sb, yb = _check_binary(scores_b, membership)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise ValueError("paired DeLong needs at least two members and two non-members")
    auc_a, pa, na = _delong_components(sa, y)
    auc_b, pb, nb = _delong_components(sb, yb)
    cov_pos = np.cov(np.vstack([pa, pb]))
    cov_neg = np.cov(np.vstack([na, nb]))
    var = (cov_pos[0, 0] + cov_pos[1, 1] - 2 * cov_pos[0, 1]) / m + (cov_neg[0, 0] + cov_neg[1, 1] - 2 * cov_neg[0, 1]) / n
    diff = auc_a - auc_b
    half = stats.norm.ppf(0.5 + level / 2) * math.sqrt(max(var, 0.0))
    return Interval(diff, max(-1.0, diff - half), min(1.0, diff + half), level, "paired-delong")


def paired_rate_difference(correct_a: np.ndarray, correct_b: np.ndarray, level: float = 0.95) -> Interval:
    """mean(a) − mean(b) for two 0/1 outcomes on the *same* rows (two models' correctness on one
    test split), with a normal interval on the per-row differences (the paired analogue of
    Clopper–Pearson, as in McNemar's test): rows both models get right or wrong cancel out, so a
    one-point drop is visible on 2,000 rows where two independent intervals would overlap."""
    a, b = np.asarray(correct_a, dtype=np.float64).ravel(), np.asarray(correct_b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"paired rates need the same rows for both (got {a.size} and {b.size})")
    differences = a - b
    value = float(differences.mean())
    half = stats.norm.ppf(0.5 + level / 2) * float(differences.std(ddof=1)) / math.sqrt(differences.size)
    return Interval(value, max(-1.0, value - half), min(1.0, value + half), level, "paired-normal")


def _bootstrap_weights(rng: np.random.Generator, size: int, draws: int) -> np.ndarray:
    """Multinomial resampling counts: resampling by weights avoids re-sorting for every draw."""
    return rng.multinomial(size, np.full(size, 1.0 / size), size=draws).astype(np.float64)


def bootstrap_auc_interval(scores: np.ndarray, membership: np.ndarray, level: float = 0.95, n_bootstrap: int = 1000, seed: int = 0, chunk: int = 64) -> Interval:
    """AUC with a stratified percentile bootstrap (members and non-members resampled separately)."""
    s, y = _check_binary(scores, membership)
    pos, neg = s[y], np.sort(s[~y])
    m, n = pos.size, neg.size
    value = auc(s, y)
    if m < 2 or n < 2:
        return Interval(value, 0.0, 1.0, level, "bootstrap")
    below = np.searchsorted(neg, pos, side="left")
    upto = np.searchsorted(neg, pos, side="right")
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        w_pos = _bootstrap_weights(rng, m, b)
        cum_neg = np.concatenate([np.zeros((b, 1)), np.cumsum(_bootstrap_weights(rng, n, b), axis=1)], axis=1)
        beaten = cum_neg[:, below] + 0.5 * (cum_neg[:, upto] - cum_neg[:, below])
        draws.append((w_pos * beaten).sum(axis=1) / (m * n))
    low, high = np.quantile(np.concatenate(draws), [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(low), float(high), level, "bootstrap")


def auc_interval(scores: np.ndarray, membership: np.ndarray, level: float = 0.95, method: Literal["delong", "bootstrap"] = "delong", n_bootstrap: int = 1000, seed: int = 0) -> Interval:
    if method == "delong":
        return delong_interval(scores, membership, level)
    if method == "bootstrap":
        return bootstrap_auc_interval(scores, membership, level, n_bootstrap, seed)
    raise ValueError(f"unknown AUC interval method {method!r}; use 'delong' or 'bootstrap'")


def advantage_interval(scores: np.ndarray, membership: np.ndarray, level: float = 0.95, n_bootstrap: int = 1000, seed: int = 0, chunk: int = 64) -> Interval:
    """Membership advantage max_t (TPR − FPR), as older papers report it, with a stratified bootstrap.

    The maximum is taken over thresholds on the evaluation data itself, so the point is optimistic;
    it is reported for comparison with the literature, and gates should prefer AUC or TPR at low FPR.
    """
    s, y = _check_binary(scores, membership)
    m, n = int(y.sum()), int((~y).sum())
    roc = roc_curve(s, y)
    value = float(np.max(roc.tpr - roc.fpr)) if m and n else float("nan")
    if m < 2 or n < 2:
        return Interval(value, 0.0, 1.0, level, "bootstrap")
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted, y_sorted = s[order], y[order]
    ends = np.r_[np.where(np.diff(s_sorted))[0], s.size - 1]
    pos_at, neg_at = np.where(y_sorted)[0], np.where(~y_sorted)[0]
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        steps = np.zeros((b, s.size))
        steps[:, pos_at] = _bootstrap_weights(rng, m, b) / m
        steps[:, neg_at] = -_bootstrap_weights(rng, n, b) / n
        draws.append(np.maximum(np.cumsum(steps, axis=1)[:, ends].max(axis=1), 0.0))
    low, high = np.quantile(np.concatenate(draws), [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(low), float(high), level, "bootstrap")


# --- rates at thresholds ------------------------------------------------------------------------
def tpr_at_fpr(scores: np.ndarray, membership: np.ndarray, target_fpr: float, level: float = 0.95, min_false_positives: float = 5.0, roc: RocCurve | None = None) -> RateAtFpr:
    """TPR at ``target_fpr`` with a Clopper–Pearson interval on the members' hit count.

    Given the threshold, member hits are binomial (members and non-members are independent), so the
    interval is exact for the TPR *at that threshold*. With n non-members an FPR below ~k/n rests on
    fewer than k false positives: then ``reliable`` is False and the note says how many are needed.
    """
    s, y = _check_binary(scores, membership)
    m, n = int(y.sum()), int((~y).sum())
    roc = roc or roc_curve(s, y)
    idx = int(np.flatnonzero(roc.fpr <= target_fpr + 1e-12)[-1]) if n else 0
    hits = int(round(roc.tpr[idx] * m)) if m else 0
    needed = int(math.ceil(min_false_positives / target_fpr))
    reliable = n >= needed
    note = "" if reliable else f"{n} non-members give {n * target_fpr:.1f} expected false positives at FPR {target_fpr:g}; need >= {needed}"
    return RateAtFpr(target_fpr, clopper_pearson(hits, m, level), float(roc.fpr[idx]), float(roc.thresholds[idx]), reliable, note)


def counts_at_threshold(scores: np.ndarray, membership: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """(true positives, members, false positives, non-members) for the decision ``score >= threshold``."""
    s, y = _check_binary(scores, membership)
    hit = s >= threshold
    return int((hit & y).sum()), int(y.sum()), int((hit & ~y).sum()), int((~y).sum())


def best_balanced_accuracy_threshold(scores: np.ndarray, membership: np.ndarray) -> float:
    """The threshold maximising TPR − FPR (hence balanced accuracy) — to be fit on calibration data only."""
    roc = roc_curve(scores, membership)
    return float(roc.thresholds[int(np.argmax(roc.tpr - roc.fpr))])


def balanced_accuracy_at(scores: np.ndarray, membership: np.ndarray, threshold: float, level: float = 0.95) -> Interval:
    """Balanced accuracy ½(TPR + TNR) at a fixed threshold.

    The interval combines Clopper–Pearson intervals for TPR and FPR, each at level 1 − (1 − level)/2,
    so by Bonferroni both hold together with probability ≥ ``level``: conservative, never flattering.
    """
    tp, m, fp, n = counts_at_threshold(scores, membership, threshold)
    each = 1.0 - (1.0 - level) / 2
    tpr, fpr = clopper_pearson(tp, m, each), clopper_pearson(fp, n, each)
    return Interval((tpr.value + 1.0 - fpr.value) / 2, (tpr.low + 1.0 - fpr.high) / 2, (tpr.high + 1.0 - fpr.low) / 2, level, "clopper-pearson-bonferroni")


def _clopper_pearson_ends(successes: np.ndarray, trials: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Clopper–Pearson ends for many counts out of the same number of trials."""
    k = np.asarray(successes, dtype=np.float64)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, trials - k + 1), 0.0)
        high = np.where(k < trials, stats.beta.ppf(1 - alpha / 2, k + 1, trials - k), 1.0)
    return low, high


def _epsilon_bounds(tp: np.ndarray, members: int, fp: np.ndarray, non_members: int, delta: float, level: float) -> np.ndarray:
    each = 1.0 - (1.0 - level) / 2
    tpr_low, _ = _clopper_pearson_ends(tp, members, each)
    _, fpr_high = _clopper_pearson_ends(fp, non_members, each)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.log(np.clip(tpr_low - delta, 0.0, None) / fpr_high)
        complement = np.log(np.clip(1.0 - fpr_high - delta, 0.0, None) / (1.0 - tpr_low))
    bounds = np.fmax(np.nan_to_num(direct, nan=0.0, neginf=0.0), np.nan_to_num(complement, nan=0.0, neginf=0.0))
    return np.maximum(bounds, 0.0)


def epsilon_lower_bound(tp: int, members: int, fp: int, non_members: int, delta: float = 0.0, level: float = 0.95) -> float:
    """Lower bound on ε implied by one attack's error counts, valid with probability ≥ ``level``.

    (ε, δ)-DP forces TPR ≤ e^ε·FPR + δ and TNR ≤ e^ε·FNR + δ for every test. We plug in the
    *conservative* ends of Clopper–Pearson intervals (TPR and TNR low, FPR and FNR high; each interval
    at 1 − (1 − level)/2 so both hold together) and take the larger of the two implied bounds, floored
    at 0. The threshold must come from data other than these counts, or the bound is optimistic.
    """
    if members <= 0 or non_members <= 0:
        return 0.0
    return float(_epsilon_bounds(np.array([tp]), members, np.array([fp]), non_members, delta, level)[0])


def calibrated_epsilon(
    calibration_scores: np.ndarray,
    calibration_membership: np.ndarray,
    scores: np.ndarray,
    membership: np.ndarray,
    delta: float = 0.0,
    level: float = 0.95,
) -> EpsilonBound:
    """ε lower bound on evaluation data at the threshold that maximises it on calibration data.

    Choosing the threshold on the evaluation counts themselves would be a multiple comparison and
    overstate ε; choosing it on disjoint calibration data keeps the bound's guarantee.
    """
    s, y = _check_binary(calibration_scores, calibration_membership)
    m, n = int(y.sum()), int((~y).sum())
    threshold = float("inf")
    if m and n:
        roc = roc_curve(s, y)
        tp, fp = np.rint(roc.tpr[1:] * m), np.rint(roc.fpr[1:] * n)
        threshold = float(roc.thresholds[1 + int(np.argmax(_epsilon_bounds(tp, m, fp, n, delta, level)))])
    tp_eval, m_eval, fp_eval, n_eval = counts_at_threshold(scores, membership, threshold)
    return EpsilonBound(epsilon_lower_bound(tp_eval, m_eval, fp_eval, n_eval, delta, level), delta, level, threshold)


# --- gates --------------------------------------------------------------------------------------
Direction = Literal["at_most", "at_least"]
Policy = Literal["lower", "upper", "point", "lenient", "strict"]


@dataclass(frozen=True)
class GateDecision:
    """Outcome of :func:`gate`. ``margin`` is signed: positive = passing by that much, negative = failing."""

    passed: bool
    margin: float
    explanation: str
    compared: float
    limit: float
    direction: str
    policy: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "margin": json_float(self.margin), "compared": json_float(self.compared)}


def _resolve_policy(policy: Policy, direction: Direction) -> Literal["lower", "upper", "point"]:
    """``lenient`` fails only when the whole interval is on the wrong side; ``strict`` needs all of it on the right side."""
    if policy in ("lower", "upper", "point"):
        return policy
    if policy == "lenient":
        return "lower" if direction == "at_most" else "upper"
    if policy == "strict":
        return "upper" if direction == "at_most" else "lower"
    raise ValueError(f"unknown gate policy {policy!r}; use lower, upper, point, lenient or strict")


def gate(value: Interval, limit: float, direction: Direction = "at_most", policy: Policy = "lenient", name: str = "value") -> GateDecision:
    """Pass or fail ``value`` against ``limit`` using one explicit end of its interval.

    ``policy`` names the end compared with the limit: ``lower``, ``upper`` or ``point``; or by intent,
    ``lenient`` (benefit of the doubt: for ``at_most`` fail only when the lower bound exceeds the
    limit, i.e. leakage is *shown*) and ``strict`` (burden of proof: for ``at_most`` pass only when the
    upper bound is within the limit, i.e. safety is *shown*). Lenient gates rarely flake in CI; strict
    gates need enough evaluation data to be passable at all.
    """
    if direction not in ("at_most", "at_least"):
        raise ValueError(f"direction must be 'at_most' or 'at_least', not {direction!r}")
    end = _resolve_policy(policy, direction)
    compared = {"lower": value.low, "upper": value.high, "point": value.value}[end]
    margin = (limit - compared) if direction == "at_most" else (compared - limit)
    passed = bool(margin >= 0)
    relation = "<=" if direction == "at_most" else ">="
    shown = "point estimate" if end == "point" else f"{end} bound of the {value.level:.0%} interval"
    explanation = f"{name} {value}: {shown} {compared:.4g} {'satisfies' if passed else 'violates'} {relation} {limit:g} (policy {policy}); margin {margin:+.4g}"
    return GateDecision(passed, float(margin), explanation, float(compared), float(limit), direction, policy)


def json_float(x: float) -> Optional[float]:
    """JSON has no NaN or infinity: they become null so reports stay parseable everywhere."""
    x = float(x)
    return x if math.isfinite(x) else None
