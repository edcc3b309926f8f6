"""Safety beyond membership: adversarial robustness and model inversion (docs/attacks.md).

Not part of the shipped default suite (they live outside ``safecompress/suite/``, which the demo
runs): a project adds them by importing them into its own ``safety_tests/``, beside the suite's
tests and with its fixtures, as ``examples/heterogeneous/`` does. Thresholds:

- ``robust_accuracy_drop_max``: how many points of robust accuracy compression may cost against the
  dense parent (in-loop under FGSM on population rows, at the gate under PGD on the test split);
- ``robust_accuracy_min``: an absolute floor for the in-loop FGSM robust accuracy;
- ``inversion_auc_max``: the inversion attack's member-vs-non-member AUC (lenient: fails only when
  its whole interval lies above).

ε is the attacks' default, 0.1 in pixel units, and the same for the remedy
``adversarial_training``; a project that wants another ε passes ``eps`` to the attacks and the
remedy alike.
"""

import safecompress
from safecompress.attacks import run_attacks
from safecompress.attacks.inversion import inversion_attack
from safecompress.attacks.robustness import InputBox, fgsm_accuracy, paired_accuracy_difference


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_training")
@safecompress.mark.target(serves="test_pgd_gate")
def test_robustness_in_loop(model, data, robustness_rows, dense_robustness, device, record, thresholds):
    """FGSM robust accuracy on a fixed draw of population rows stays above ``robust_accuracy_min``
    and within ``robust_accuracy_drop_max`` of the dense parent's on the same rows. The cheap proxy
    that steers training: a red result switches adversarial training on. Judged on the point
    estimate, like every steering target: it steers and is reported met or missed; the PGD gate
    decides."""
    result = fgsm_accuracy(model, robustness_rows, box=InputBox.for_data(data), device=device)
    limit = thresholds["robust_accuracy_min"]
    if dense_robustness is not None:
        record.metric("dense_fgsm_robust_accuracy", dense_robustness.robust_accuracy.value)
        limit = max(limit, dense_robustness.robust_accuracy.value - thresholds["robust_accuracy_drop_max"])
    record.metric("fgsm_clean_accuracy", result.clean_accuracy.value)
    accuracy = result.robust_accuracy
    record.at_least("fgsm_robust_accuracy", accuracy.value, limit, interval=(accuracy.low, accuracy.high), policy="point")


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_pgd_gate(model, dense_model, data, device, seed, record, thresholds):
    """Robust accuracy under PGD (L∞ ε = 0.1, 10 steps) on the held-out test split: compressed minus
    dense on the same rows (paired), failing only when the whole interval lies below
    −``robust_accuracy_drop_max``."""
    compressed, dense = (run_attacks(["pgd"], m, data, device=device, seed=seed)["pgd"] for m in (model, dense_model))
    record.metric("pgd_robust_accuracy", compressed.robust_accuracy.value)
    record.metric("dense_pgd_robust_accuracy", dense.robust_accuracy.value)
    difference = paired_accuracy_difference(compressed.robust_correct, dense.robust_correct)
    record.at_least("pgd_robust_accuracy_minus_dense", difference.value, -thresholds["robust_accuracy_drop_max"], interval=(difference.low, difference.high))


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_inversion_gate(model, data, device, seed, record, thresholds):
    """Class-representative inversion must not recover the members more than the distribution: its
    member-vs-non-member AUC stays under ``inversion_auc_max``."""
    record.attack("inversion", inversion_attack(model, data, seed=seed, device=device), thresholds["inversion_auc_max"])
