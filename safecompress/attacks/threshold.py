"""Tier 0: free attacks that threshold one statistic of the cached outputs (METHOD.md §5).

Each signal is oriented so that higher means "more likely a member": negative loss, confidence
p_y, negative entropy, negative modified entropy (Song & Mittal 2021). With ``class_dependent``
each class gets its own threshold, fit on calibration rows to maximise balanced accuracy, and the
score becomes the distance above that class's threshold — one ROC across classes whose thresholds
differ. The generalization gap is the "gap attack" (member iff correctly classified, Yeom et al.).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy import stats

from safecompress import metrics
from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, scores_to_results
from safecompress.metrics import Interval

Signal = Callable[[AttackInputs], np.ndarray]


def loss_signal(inputs: AttackInputs) -> np.ndarray:
    return -inputs.per_sample_loss()


def confidence_signal(inputs: AttackInputs) -> np.ndarray:
    return inputs.probabilities()[np.arange(len(inputs)), inputs.labels]


def entropy_signal(inputs: AttackInputs) -> np.ndarray:
    log_p = inputs.log_probs()
    return (np.exp(log_p) * log_p).sum(axis=1)


def modified_entropy_signal(inputs: AttackInputs) -> np.ndarray:
    """−Mentr, Mentr = −(1−p_y)·log p_y − Σ_{i≠y} p_i·log(1−p_i): low for confident *correct* predictions."""
    log_p = inputs.log_probs()
    p = np.exp(log_p)
    log_1mp = np.log(np.clip(-np.expm1(log_p), 1e-300, None))
    rows = np.arange(len(inputs))
    own = np.zeros_like(p, dtype=bool)
    own[rows, inputs.labels] = True
    mentr = -(1.0 - p[rows, inputs.labels]) * log_p[rows, inputs.labels] - np.where(own, 0.0, p * log_1mp).sum(axis=1)
    return -mentr


def class_thresholds(signal: np.ndarray, inputs: AttackInputs) -> np.ndarray:
    """Per-class thresholds maximising balanced accuracy on calibration members vs calibration non-members.

    A class without both kinds of calibration rows falls back to the global threshold, so a rare
    class never gets a threshold fit on nothing.
    """
    members = inputs.mask(Role.CALIBRATION) & (inputs.membership == 1)
    non_members = inputs.calibration_non_member_mask()
    rows = members | non_members
    if not members.any() or not non_members.any():
        raise ValueError("class-dependent thresholds need calibration members and calibration (or population) non-members")
    fallback = metrics.best_balanced_accuracy_threshold(signal[rows], members[rows])
    thresholds = np.full(inputs.num_classes, fallback)
    for c in range(inputs.num_classes):
        in_class = rows & (inputs.labels == c)
        y = members[in_class]
        if y.any() and not y.all():
            thresholds[c] = metrics.best_balanced_accuracy_threshold(signal[in_class], y)
    return np.where(np.isfinite(thresholds), thresholds, fallback if np.isfinite(fallback) else 0.0)


def threshold_attack(inputs: AttackInputs, signal: Signal, name: str, *, class_dependent: bool = False, options: Optional[MetricOptions] = None) -> AttackResults:
    """Score every row by ``signal``, optionally shifted by its class threshold, and evaluate."""
    values = signal(inputs)
    extra: dict[str, object] = {"class_dependent": class_dependent}
    if class_dependent:
        thresholds = class_thresholds(values, inputs)
        values = values - thresholds[inputs.labels]
        extra["class_thresholds"] = thresholds
    return scores_to_results(name, inputs, values, options=options, tier=0, extra=extra)


def loss_attack(inputs: AttackInputs, *, class_dependent: bool = False, options: Optional[MetricOptions] = None) -> AttackResults:
    """Yeom et al.: members have lower loss."""
    return threshold_attack(inputs, loss_signal, "loss", class_dependent=class_dependent, options=options)


def confidence_attack(inputs: AttackInputs, *, class_dependent: bool = False, options: Optional[MetricOptions] = None) -> AttackResults:
    """Members get a higher probability on their true label."""
    return threshold_attack(inputs, confidence_signal, "confidence", class_dependent=class_dependent, options=options)


def entropy_attack(inputs: AttackInputs, *, class_dependent: bool = False, options: Optional[MetricOptions] = None) -> AttackResults:
    """Members get lower-entropy outputs (label-free, so it also works without true labels)."""
    return threshold_attack(inputs, entropy_signal, "entropy", class_dependent=class_dependent, options=options)


def modified_entropy_attack(inputs: AttackInputs, *, class_dependent: bool = True, options: Optional[MetricOptions] = None) -> AttackResults:
    """Song & Mittal's Mentr with class-dependent thresholds: the strongest tier-0 attack in their study."""
    return threshold_attack(inputs, modified_entropy_signal, "mentr", class_dependent=class_dependent, options=options)


def generalization_gap(inputs: AttackInputs, level: float = 0.95) -> dict[str, Interval]:
    """Member accuracy minus non-member accuracy on evaluation rows, and the mean-loss gap.

    The accuracy-gap interval combines the two Clopper–Pearson intervals (each at 1 − (1−level)/2);
    the loss-gap interval is a Welch normal interval.
    """
    evaluation = inputs.mask(Role.EVALUATION)
    correct = inputs.log_probs().argmax(axis=1) == inputs.labels
    each = 1.0 - (1.0 - level) / 2
    members, non_members = evaluation & (inputs.membership == 1), evaluation & (inputs.membership == 0)
    acc_m = metrics.clopper_pearson(int(correct[members].sum()), int(members.sum()), each)
    acc_n = metrics.clopper_pearson(int(correct[non_members].sum()), int(non_members.sum()), each)
    loss = inputs.per_sample_loss()
    lm, ln = loss[members], loss[non_members]
    diff = float(ln.mean() - lm.mean())
    se = float(np.sqrt(lm.var(ddof=1) / lm.size + ln.var(ddof=1) / ln.size)) if min(lm.size, ln.size) > 1 else float("inf")
    z = float(stats.norm.ppf(0.5 + level / 2))
    return {
        "member_accuracy": acc_m,
        "non_member_accuracy": acc_n,
        "accuracy_gap": Interval(acc_m.value - acc_n.value, acc_m.low - acc_n.high, acc_m.high - acc_n.low, level, "clopper-pearson-bonferroni"),
        "loss_gap": Interval(diff, diff - z * se, diff + z * se, level, "welch-normal"),
    }


def gap_attack(inputs: AttackInputs, *, options: Optional[MetricOptions] = None) -> AttackResults:
    """Predict "member" iff the target classifies the sample correctly; its advantage is the accuracy gap."""
    correct = (inputs.log_probs().argmax(axis=1) == inputs.labels).astype(np.float64)
    level = (options or MetricOptions()).level
    gap = {name: value.to_dict() for name, value in generalization_gap(inputs, level).items()}
    return scores_to_results("gap", inputs, correct, options=options, tier=0, extra={"generalization_gap": gap})
