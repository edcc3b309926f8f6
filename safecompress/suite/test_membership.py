"""Membership inference: does the model reveal who was in its training data? (METHOD.md §4–6)

``cheap`` tests run on every candidate inside training; ``gate`` tests only on the final model.
Thresholds come from ``[tool.safecompress.thresholds]``; every AUC is gated on its interval
(lenient: fail only when the whole interval is above the limit).
"""

import safecompress
from safecompress.attacks import loss_attack, make_attack_inputs, rmia_attack
from safecompress.metrics import delong_difference


@safecompress.mark.cost("cheap")
def test_loss_attack(loop_inputs, record, thresholds):
    """Tier 0: the loss-threshold attack (Yeom et al.), free from the cached outputs."""
    record.attack("loss", loss_attack(loop_inputs), thresholds["loss_auc_max"])


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_regularization", "relaxloss")
def test_rmia_in_loop(loop_inputs, dense_baseline, record, thresholds):
    """Reference-calibrated and cheap: RMIA with one session-wide reference model.

    The target is relative: at least ``loop_rmia_gain_min`` below the dense parent's in-loop RMIA on
    the same rows and reference (the absolute ``loop_rmia_auc_max`` without a dense parent). This
    test steers training, so it tracks the gate's attack. Its remedies are adversarial
    regularisation (Nasr et al.), measured to lower RMIA, LiRA and the loss attack together here,
    then RelaxLoss (Chen et al.) when the adversary stalls at its cap; a confidence penalty or label
    smoothing games offline LiRA and raises RMIA and the loss attack (docs/benchmark.md). The target is set well below the parent because in-loop
    RMIA climbs as training goes on: a remedy switched on only when the limit is crossed comes too
    late to matter. Judged on the point estimate: on an audit set this small a lenient interval
    check would stay green, and never steer, until leakage is gross. Its limit is a target, so it
    is also judged in the final gate.
    """
    limit = thresholds["loop_rmia_auc_max"]
    if dense_baseline is not None:
        record.metric("dense_rmia1_auc", dense_baseline["rmia1_auc"])
        limit = dense_baseline["rmia1_auc"] - thresholds["loop_rmia_gain_min"]
    record.attack("rmia1", rmia_attack(loop_inputs), limit, policy="point")


@safecompress.mark.cost("gate")
def test_rmia_gate(gate_attacks, record, thresholds):
    """Tier 2, the gate: RMIA (offline, a tuned) with `gate-refs` reference models; LiRA reported beside it."""
    lira = gate_attacks["lira"]
    record.metric("lira_auc", lira.auc.value)
    record.metric("lira_tpr_at_1pct_fpr", lira.tpr_at(0.01).tpr.value)
    record.attack("rmia", gate_attacks["rmia"], thresholds["rmia_auc_max"])


@safecompress.mark.cost("gate")
def test_no_more_leaky_than_dense(model, dense_model, data, device, seed, record, thresholds):
    """The compressed model leaks no more than its dense parent: loss-attack AUC, paired DeLong
    difference on the same samples, failing only when the whole interval exceeds the tolerance."""
    compressed, dense = (loss_attack(make_attack_inputs(m, data, device=device, seed=seed)) for m in (model, dense_model))
    difference = delong_difference(compressed.scores, dense.scores, compressed.membership)  # same rows: paired
    record.metric("dense_loss_auc", dense.auc.value)
    record.at_most("loss_auc_minus_dense", difference.value, thresholds["dense_auc_tolerance"], interval=(difference.low, difference.high))
