"""Membership inference: does the model reveal who was in its training data? (METHOD.md §4–6)

``gate`` tests are the requirements: the strong attacks with the gate's references on every member
and non-member, relative to the dense parent on the same rows. ``cheap`` tests are steering targets:
judged on every candidate inside training on a small audit set, they steer selection and remedies
and are reported as met or missed, never making a run red by themselves (docs/writing-tests.md).
Thresholds come from ``[tool.safecompress.thresholds]``.
"""

import safecompress
from safecompress.attacks import loss_attack, make_attack_inputs, rmia_attack
from safecompress.metrics import delong_difference


@safecompress.mark.cost("cheap")
@safecompress.mark.target(serves="test_no_more_leaky_than_dense")
def test_loss_attack(loop_inputs, record, thresholds):
    """Tier 0: the loss-threshold attack (Yeom et al.), free from the cached outputs (lenient interval)."""
    record.attack("loss", loss_attack(loop_inputs), thresholds["loss_auc_max"])


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_regularization", "relaxloss")
@safecompress.mark.target(serves="test_rmia_gate")
def test_rmia_in_loop(loop_inputs, rmia_steering_target, record, thresholds):
    """The steering target of the RMIA requirement: RMIA with one session-wide reference model on
    the in-loop audit set, at most the limit calibrated from the requirement on the dense parent
    (:mod:`safecompress.suite.calibration`; the absolute ``loop_rmia_auc_max`` without a parent).
    Its remedies are adversarial regularisation (Nasr et al.), measured to lower RMIA, LiRA and the
    loss attack together here, then RelaxLoss (Chen et al.) when the adversary stalls at its cap; a
    confidence penalty or label smoothing games offline LiRA and raises RMIA and the loss attack
    (docs/benchmark.md). Judged on the point estimate: on an audit set this small a lenient interval
    would stay green, and never steer, until leakage is gross."""
    limit = thresholds["loop_rmia_auc_max"]
    if rmia_steering_target is not None:
        record.note("calibration", rmia_steering_target.to_dict())
        if rmia_steering_target.note:
            record.warn(rmia_steering_target.note)
        if rmia_steering_target.limit is None:
            safecompress.skip(rmia_steering_target.note)
        record.metric("dense_rmia1_auc", rmia_steering_target.loop_parent)
        limit = rmia_steering_target.limit
    record.attack("rmia1", rmia_attack(loop_inputs), limit, policy="point")


@safecompress.mark.cost("validation")
@safecompress.mark.target(serves="test_rmia_gate")
def test_rmia_validation(validation_attacks, dense_validation_attacks, record, thresholds):
    """The RMIA requirement checked on the checkpoint about to ship, before the gate: the gate's
    attack and references on the members and non-members the gate only calibrates on, at most
    ``rmia_gain_min`` below the dense parent's AUC on the same rows (point). It replaces the in-loop
    target's verdict for that checkpoint: a checkpoint it rejects does not ship while another
    contender or attempt remains (docs/driver.md, "Validation")."""
    rmia = validation_attacks["rmia"]
    if dense_validation_attacks is None:
        record.attack("rmia", rmia, thresholds["rmia_auc_max"], policy="point")
        return
    dense = dense_validation_attacks["rmia"]
    record.attack("rmia", rmia)
    record.metric("dense_rmia_auc", dense.auc.value)
    difference = delong_difference(rmia.scores, dense.scores, rmia.membership)  # same rows, same references: paired
    record.at_most("rmia_auc_minus_dense", difference.value, -thresholds["rmia_gain_min"], interval=(difference.low, difference.high), policy="point")


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_rmia_gate(gate_attacks, dense_gate_attacks, record, thresholds):
    """The RMIA requirement: RMIA (offline, a tuned) with ``gate-refs`` reference models, AUC at
    least ``rmia_gain_min`` below the dense parent's on the same rows (point estimate; the paired
    DeLong interval of the difference is reported). LiRA is reported beside it. Without a parent (an
    absolute-only gate): AUC at most ``rmia_auc_max`` on its interval (lenient)."""
    lira, rmia = gate_attacks["lira"], gate_attacks["rmia"]
    record.metric("lira_auc", lira.auc.value)
    record.metric("lira_tpr_at_1pct_fpr", lira.tpr_at(0.01).tpr.value)
    if dense_gate_attacks is None:
        record.attack("rmia", rmia, thresholds["rmia_auc_max"])
        return
    dense = dense_gate_attacks["rmia"]
    record.attack("rmia", rmia)  # the curve, the TPR and the AUC as metrics; the requirement is the difference below
    record.metric("dense_rmia_auc", dense.auc.value)
    record.metric("dense_lira_auc", dense_gate_attacks["lira"].auc.value)
    if len(dense.membership) != len(rmia.membership) or (dense.membership != rmia.membership).any():
        raise ValueError("the gate attacked the model and its dense parent on different rows: a paired difference needs the same rows")
    difference = delong_difference(rmia.scores, dense.scores, rmia.membership)  # same rows, same references: paired
    record.at_most("rmia_auc_minus_dense", difference.value, -thresholds["rmia_gain_min"], interval=(difference.low, difference.high), policy="point")


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_no_more_leaky_than_dense(model, dense_model, data, device, seed, record, thresholds):
    """The compressed model leaks no more than its dense parent: loss-attack AUC, paired DeLong
    difference on the same samples, failing only when the whole interval exceeds the tolerance."""
    compressed, dense = (loss_attack(make_attack_inputs(m, data, device=device, seed=seed)) for m in (model, dense_model))
    difference = delong_difference(compressed.scores, dense.scores, compressed.membership)  # same rows: paired
    record.metric("dense_loss_auc", dense.auc.value)
    record.at_most("loss_auc_minus_dense", difference.value, thresholds["dense_auc_tolerance"], interval=(difference.low, difference.high))
