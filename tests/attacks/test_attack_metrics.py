"""Statistics of the attack suite: agreement with scikit-learn, exact intervals, coverage, gates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from safecompress import metrics
from safecompress.metrics import Interval

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _binormal(rng: np.random.Generator, m: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Members ~ N(shift, 1), non-members ~ N(0, 1): true AUC is Φ(shift/√2)."""
    return np.r_[rng.normal(shift, 1.0, m), rng.normal(0.0, 1.0, n)], np.r_[np.ones(m), np.zeros(n)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [False, True])
def test_roc_and_auc_equal_scikit_learn(seed: int, tied: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    scores = rng.integers(0, 7, n).astype(float) if tied else rng.normal(size=n) + 0.5 * y
    assert metrics.auc(scores, y) == pytest.approx(sklearn_metrics.roc_auc_score(y, scores), abs=1e-12)
    for drop in (False, True):
        ours = metrics.roc_curve(scores, y, drop_intermediate=drop)
        fpr, tpr, thresholds = sklearn_metrics.roc_curve(y, scores, drop_intermediate=drop)
        np.testing.assert_allclose(ours.fpr, fpr)
        np.testing.assert_allclose(ours.tpr, tpr)
        np.testing.assert_array_equal(ours.thresholds[1:], thresholds[1:])
        assert ours.thresholds[0] == np.inf


def test_auc_intervals_contain_the_point_and_agree_on_width() -> None:
    scores, y = _binormal(np.random.default_rng(0), 300, 300, 0.8)
    delong = metrics.delong_interval(scores, y)
    boot = metrics.bootstrap_auc_interval(scores, y, n_bootstrap=2000, seed=1)
    assert delong.value == boot.value == pytest.approx(sklearn_metrics.roc_auc_score(y, scores))
    assert delong.contains(delong.value) and boot.contains(boot.value)
    assert boot.width == pytest.approx(delong.width, rel=0.2)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (17, 500), (499, 500)])
def test_clopper_pearson_is_the_exact_binomial_interval(k: int, n: int) -> None:
    ours = metrics.clopper_pearson(k, n, 0.95)
    exact = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert (ours.low, ours.high) == pytest.approx((exact.low, exact.high), abs=1e-9)
    assert ours.value == k / n


def test_tpr_at_fpr_reads_the_roc_and_flags_small_samples() -> None:
    scores = np.r_[np.arange(50, 150), np.arange(0, 100)].astype(float)
    y = np.r_[np.ones(100), np.zeros(100)]
    rate = metrics.tpr_at_fpr(scores, y, 0.01)
    assert rate.tpr.value == pytest.approx(0.51)  # members >= 99; one non-member (99) gives FPR 1 %
    assert rate.achieved_fpr == pytest.approx(0.01) and rate.threshold == 99
    assert not rate.reliable and "need >= 500" in rate.note
    assert metrics.tpr_at_fpr(np.r_[scores, np.zeros(400)], np.r_[y, np.zeros(400)], 0.01).reliable


def test_delong_interval_covers_the_true_auc() -> None:
    rng = np.random.default_rng(1)
    truth = stats.norm.cdf(0.8 / math.sqrt(2))
    hits = [metrics.delong_interval(*_binormal(rng, 100, 100, 0.8)).contains(truth) for _ in range(400)]
    assert np.mean(hits) >= 0.90


def test_bootstrap_interval_covers_the_true_auc() -> None:
    rng = np.random.default_rng(2)
    truth = stats.norm.cdf(0.5 / math.sqrt(2))
    hits = [metrics.bootstrap_auc_interval(*_binormal(rng, 80, 80, 0.5), n_bootstrap=300, seed=i).contains(truth) for i in range(200)]
    assert np.mean(hits) >= 0.90


def test_null_auc_interval_covers_one_half() -> None:
    rng = np.random.default_rng(3)
    hits = [metrics.delong_interval(*_binormal(rng, 150, 150, 0.0)).contains(0.5) for _ in range(300)]
    assert np.mean(hits) >= 0.90


def test_clopper_pearson_tpr_at_low_fpr_covers_the_tpr_at_the_chosen_threshold() -> None:
    """Given the threshold (chosen from the non-members), member hits are binomial: the interval is exact."""
    rng = np.random.default_rng(4)
    shift, hits = 1.5, []
    for _ in range(300):
        rate = metrics.tpr_at_fpr(*_binormal(rng, 500, 500, shift), target_fpr=0.01)
        hits.append(rate.tpr.contains(stats.norm.sf(rate.threshold - shift)))
    assert np.mean(hits) >= 0.90


def test_balanced_accuracy_interval_covers_the_truth_at_a_calibrated_threshold() -> None:
    rng = np.random.default_rng(5)
    shift, hits = 0.6, []
    for _ in range(300):
        threshold = metrics.best_balanced_accuracy_threshold(*_binormal(rng, 200, 200, shift))
        truth = 0.5 * (stats.norm.sf(threshold - shift) + stats.norm.cdf(threshold))
        hits.append(metrics.balanced_accuracy_at(*_binormal(rng, 200, 200, shift), threshold).contains(truth))
    assert np.mean(hits) >= 0.90


def test_epsilon_lower_bound_is_rarely_positive_without_leakage() -> None:
    rng = np.random.default_rng(6)
    bounds = [metrics.calibrated_epsilon(*_binormal(rng, 300, 300, 0.0), *_binormal(rng, 300, 300, 0.0)).value for _ in range(200)]
    assert np.mean(np.array(bounds) > 0) <= 0.05


def test_epsilon_lower_bound_grows_with_leakage_and_uses_conservative_ends() -> None:
    rng = np.random.default_rng(7)
    strong = metrics.calibrated_epsilon(*_binormal(rng, 1000, 1000, 3.0), *_binormal(rng, 1000, 1000, 3.0))
    assert strong.value > 1.5
    # 90/100 hits vs 1/100 false positives: the point ratio is ln 90 ≈ 4.5, the conservative bound far less.
    assert 0 < metrics.epsilon_lower_bound(90, 100, 1, 100) < math.log(90) - 1.5


def test_paired_delong_difference() -> None:
    rng = np.random.default_rng(8)
    scores, y = _binormal(rng, 200, 200, 1.0)
    same = metrics.delong_difference(scores, scores, y)
    assert same.value == 0 and same.width == pytest.approx(0, abs=1e-12)
    weaker = scores + rng.normal(0, 2.0, scores.size)
    diff = metrics.delong_difference(scores, weaker, y)
    assert diff.value == pytest.approx(metrics.auc(scores, y) - metrics.auc(weaker, y))
    assert diff.low > 0


def test_advantage_is_max_tpr_minus_fpr_with_an_interval() -> None:
    scores, y = _binormal(np.random.default_rng(9), 300, 300, 1.0)
    adv = metrics.advantage_interval(scores, y, n_bootstrap=500)
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, scores)
    assert adv.value == pytest.approx(np.max(tpr - fpr))
    assert adv.low < adv.value < adv.high


@pytest.mark.parametrize(
    ("policy", "direction", "passed", "margin"),
    [
        ("lenient", "at_most", True, 0.02),  # lower bound 0.58 <= 0.60
        ("lower", "at_most", True, 0.02),
        ("strict", "at_most", False, -0.06),  # upper bound 0.66 > 0.60
        ("upper", "at_most", False, -0.06),
        ("point", "at_most", False, -0.02),
        ("lenient", "at_least", True, 0.06),  # at least 0.60: upper bound 0.66 >= 0.60
        ("strict", "at_least", False, -0.02),
    ],
)
def test_gate_policies_and_signed_margins(policy: str, direction: str, passed: bool, margin: float) -> None:
    decision = metrics.gate(Interval(0.62, 0.58, 0.66, 0.95, "delong"), 0.60, direction=direction, policy=policy, name="auc")  # type: ignore[arg-type]
    assert decision.passed is passed
    assert decision.margin == pytest.approx(margin)
    assert ("satisfies" if passed else "violates") in decision.explanation and "auc" in decision.explanation
    assert decision.to_dict()["policy"] == policy


def test_gate_rejects_unknown_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        metrics.gate(Interval(0.5, 0.4, 0.6), 0.6, policy="maybe")  # type: ignore[arg-type]


# --- small slices (issue 15: no degenerate interval presented as certainty) -------------------------
def test_small_sample_auc_interval_is_not_degenerate_at_perfect_separation() -> None:
    scores, y = np.r_[np.arange(20) + 100.0, np.arange(20)], np.r_[np.ones(20), np.zeros(20)]
    delong = metrics.delong_interval(scores, y)
    honest = metrics.small_sample_auc_interval(scores, y)
    assert (delong.low, delong.high) == (1.0, 1.0)  # what audit used to print as [1.000, 1.000]
    assert honest.value == 1.0 and honest.high == 1.0
    assert honest.low == pytest.approx(0.025 ** (1 / 20), abs=1e-9)  # Clopper–Pearson, 20 of 20 "trials"


def test_small_sample_auc_interval_covers_on_few_rows_and_contains_delong() -> None:
    """20 + 20 rows, true AUC Φ(1.8/√2) ≈ 0.90: DeLong under-covers, the exact hull does not."""
    rng = np.random.default_rng(0)
    truth = stats.norm.cdf(1.8 / math.sqrt(2))
    covered = {"delong": 0, "small": 0}
    runs = 400
    for _ in range(runs):
        scores, y = _binormal(rng, 20, 20, 1.8)
        delong, small = metrics.delong_interval(scores, y), metrics.small_sample_auc_interval(scores, y)
        assert small.low <= delong.low and small.high >= delong.high
        covered["delong"] += delong.low <= truth <= delong.high
        covered["small"] += small.low <= truth <= small.high
    assert covered["small"] / runs >= 0.95 > covered["delong"] / runs


def test_tiny_class_slices_are_flagged_and_never_ranked() -> None:
    from safecompress.attacks.data_structures import AttackResults

    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(20), np.ones(200), np.zeros(20), np.ones(200)].astype(int)  # class 0: 20 + 20 rows
    y = np.r_[np.ones(220), np.zeros(220)]
    scores = rng.normal(size=440) + 0.3 * y
    scores[labels == 0] = np.where(y[labels == 0] == 1, 10.0, -10.0)  # class 0 perfectly separated
    results = AttackResults.from_scores("toy", scores, y, labels=labels)
    tiny, large = results.slices["class=0"], results.slices["class=1"]
    assert not tiny.reliable and "too few samples: 20 members + 20 non-members" in tiny.note and tiny.auc.low < 0.9
    assert large.reliable and results.to_dict()["slices"]["class=0"]["reliable"] is False
    assert "most exposed slice: class=1" in results.summary()  # the perfect 20 + 20 slice is not ranked first
    alone = AttackResults.from_scores("toy", scores[labels == 0], y[labels == 0], labels=labels[labels == 0])
    assert "not ranked, every class slice has too few samples" in alone.summary()
