"""Tier 2: the Robust Membership Inference Attack (Zarifzadeh et al. 2024).

For a sample x the likelihood ratio is Pr(x|θ) / Pr(x), with Pr(x|θ) = p_y(x) under the target and
Pr(x) its average over models trained with and without x. The score is the fraction of population
samples z that x dominates: ``score(x) = |{z : ratio(x) / ratio(z) ≥ γ}| / |Z|``. Sorting the z
ratios once and binary-searching each x costs O((|X| + |Z|) log |Z|) instead of O(|X|·|Z|).

Pr(·) for a row is ½(P_in + P_out) when IN and OUT references exist and may be used (online
targets; population rows, which the references were trained on half of the time). Otherwise only
OUT references exist and the offline approximation applies: Pr(x) ≈ ½[(1 + a)·P_out(x) + (1 − a)].
``a`` is tuned by attacking one reference model with the others (as in the paper); when the
references cannot attack each other (two complementary ones) it is tuned on the calibration rows,
and with neither it defaults to 0.3. Ratios are handled in log space throughout.
"""

from __future__ import annotations

import logging
from typing import Optional, Union

import numpy as np
from scipy.special import logsumexp

from safecompress import metrics
from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, scores_to_results
from safecompress.attacks.lira import uses_online

log = logging.getLogger(__name__)

DEFAULT_A = 0.3
A_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def rmia_scores(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Fraction of z with ratio_x / ratio_z ≥ γ, i.e. log ratio_z ≤ log ratio_x − log γ, by sorting."""
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, not {gamma}")
    sorted_z = np.sort(np.asarray(log_ratio_z, dtype=np.float64))
    bound = np.asarray(log_ratio_x, dtype=np.float64) - np.log(gamma)
    return np.searchsorted(sorted_z, bound, side="right") / sorted_z.size


def rmia_scores_pairwise(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float = 1.0, chunk: int = 1024) -> np.ndarray:
    """The O(|X|·|Z|) definition, for checking :func:`rmia_scores` and for the benchmark's speed-up."""
    z = np.asarray(log_ratio_z, dtype=np.float64)
    bound = np.asarray(log_ratio_x, dtype=np.float64) - np.log(gamma)
    return np.concatenate([(z[None, :] <= bound[i : i + chunk, None]).mean(axis=1) for i in range(0, bound.size, chunk)])


def _log_mean(log_values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log of the mean of exp(log_values) over the rows where ``mask`` (−inf where none)."""
    count = mask.sum(axis=0)
    with np.errstate(divide="ignore"):
        return logsumexp(np.where(mask, log_values, -np.inf), axis=0) - np.log(np.maximum(count, 1))


def log_marginal(ref_log_py: np.ndarray, ref_in: np.ndarray, a: float, use_in: np.ndarray) -> np.ndarray:
    """log Pr(x) per column: ½(P_in + P_out) where ``use_in`` and both exist, else the offline approximation."""
    log_out = _log_mean(ref_log_py, ~ref_in)
    log_in = _log_mean(ref_log_py, ref_in)
    both = use_in & ref_in.any(axis=0) & (~ref_in).any(axis=0)
    with np.errstate(divide="ignore"):
        offline = np.logaddexp(np.log((1.0 + a) / 2.0) + log_out, np.log((1.0 - a) / 2.0))
    return np.where(both, np.logaddexp(log_in, log_out) - np.log(2.0), offline)


def _true_class_log_probs(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.take_along_axis(log_probs, labels.reshape((1,) * (log_probs.ndim - 2) + (-1, 1)), axis=-1)[..., 0]


def _auc_for_a(target_log_py: np.ndarray, ref_log_py: np.ndarray, ref_in: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, gamma: float) -> list[float]:
    """AUC of the offline attack on rows ``x`` (truth ``y``) against ``z``, for every a in the grid."""
    use_in = np.zeros(target_log_py.size, dtype=bool)
    use_in[z] = True
    aucs = []
    for a in A_GRID:
        log_ratio = target_log_py - log_marginal(ref_log_py, ref_in, a, use_in)
        aucs.append(metrics.auc(rmia_scores(log_ratio[x], log_ratio[z], gamma), y))
    return aucs


def tune_a(inputs: AttackInputs, gamma: float = 1.0, seed: int = 0) -> tuple[float, str]:
    """Pick a on :data:`A_GRID` by AUC: on the references (leave one out), else on calibration rows."""
    ref_log_py = _true_class_log_probs(inputs.ref_log_probs(), inputs.labels)
    ref_in = inputs.reference_in()
    population = inputs.mask(Role.POPULATION)
    rng = np.random.default_rng(seed)
    curves = []
    for j in range(inputs.num_references):
        others = np.arange(inputs.num_references) != j
        usable = population & (~ref_in[others]).any(axis=0)
        members = np.flatnonzero(usable & ref_in[j])
        non_members = rng.permutation(np.flatnonzero(usable & ~ref_in[j]))
        half = non_members.size // 2
        if members.size < 2 or half < 2:
            continue
        x = np.r_[members, non_members[:half]]
        y = np.r_[np.ones(members.size), np.zeros(half)]
        curves.append(_auc_for_a(ref_log_py[j], ref_log_py[others], ref_in[others], x, y, non_members[half:], gamma))
    if curves:
        return float(A_GRID[int(np.argmax(np.mean(curves, axis=0)))]), "references"
    calibration = np.flatnonzero(inputs.mask(Role.CALIBRATION))
    z = np.flatnonzero(population & (~ref_in).any(axis=0))
    y = inputs.membership[calibration]
    if y.size and 0 < y.sum() < y.size and z.size:
        target_log_py = _true_class_log_probs(inputs.log_probs(), inputs.labels)
        aucs = _auc_for_a(target_log_py, ref_log_py, ref_in, calibration, y, z, gamma)
        return float(A_GRID[int(np.argmax(aucs))]), "calibration"
    return DEFAULT_A, "default"


def rmia_attack(
    inputs: AttackInputs,
    *,
    online: Optional[bool] = None,
    a: Union[float, str] = "auto",
    gamma: float = 1.0,
    seed: int = 0,
    options: Optional[MetricOptions] = None,
) -> AttackResults:
    """RMIA scores for calibration and evaluation rows against the population rows as z."""
    online = uses_online(inputs, online)
    ref_in = inputs.reference_in()
    scored = inputs.role != Role.POPULATION
    if (~ref_in[:, scored]).sum(axis=0).min() < 1:
        raise ValueError("every target needs at least one reference model trained without it (OUT)")
    z = inputs.mask(Role.POPULATION) & (~ref_in).any(axis=0)
    if z.sum() < 1:
        raise ValueError("RMIA needs population rows with at least one OUT reference to compare against")
    if online:
        a_value, tuned_on = DEFAULT_A, "unused (online)"
    elif isinstance(a, str):
        if a != "auto":
            raise ValueError(f"a must be a number in [0, 1] or 'auto', not {a!r}")
        a_value, tuned_on = tune_a(inputs, gamma, seed)
    else:
        a_value, tuned_on = float(a), "given"
    ref_log_py = _true_class_log_probs(inputs.ref_log_probs(), inputs.labels)
    log_py = _true_class_log_probs(inputs.log_probs(), inputs.labels)
    use_in = z | (scored if online else np.zeros_like(scored))
    log_ratio = log_py - log_marginal(ref_log_py, ref_in, a_value, use_in)
    scores = np.full(len(inputs), np.nan)
    scores[scored] = rmia_scores(log_ratio[scored], log_ratio[z], gamma)
    log.debug("rmia: a=%.2f (%s), gamma=%g, %d z samples, online=%s", a_value, tuned_on, gamma, int(z.sum()), online)
    extra = {"online": online, "a": None if online else a_value, "a_tuned_on": tuned_on, "gamma": gamma, "population": int(z.sum()), "references": inputs.num_references}
    return scores_to_results("rmia", inputs, scores, options=options, tier=2, extra=extra)
