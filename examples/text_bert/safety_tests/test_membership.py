"""Membership inference: can an attacker tell whether a given gloss was in the training set?

``cheap`` tests run on every candidate inside ``safecompress compress`` (they steer training);
``gate`` tests run on the final model only (they decide the exit code). Every AUC is gated on its
95 % interval, leniently: a test fails only when the whole interval is above its limit.
"""

import safecompress
from safecompress.attacks import loss_attack, make_attack_inputs, rmia_attack
from safecompress.metrics import delong_difference


@safecompress.mark.cost("cheap")
def test_loss_attack(loop_inputs, record, thresholds):
    """The loss-threshold attack (Yeom et al. 2018): members have lower loss. Free: cached outputs."""
    record.attack("loss", loss_attack(loop_inputs), thresholds["loss_auc_max"])


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_regularization", max_weight=1.6)
def test_rmia_in_loop(loop_inputs, record, thresholds):
    """RMIA with one session-wide reference model: the test that steers compression.

    It is judged on the point estimate (``policy="point"``), not leniently: on a small audit set
    the interval is wide, and a lenient check would stay green, and never steer, until leakage is
    gross. While it is red the driver switches on adversarial regularisation (Nasr et al.: an
    attacker network learns to tell members from population samples, the model learns to fool it)
    and doubles its weight at each topology update, up to ``max_weight``; once green the weight
    decays, and while the accuracy test is red it backs off. (A confidence penalty would be
    cheaper, but it fools offline LiRA and raises RMIA: see docs/benchmark.md.) Like
    every test it also runs in the final gate, so its limit is a target compression must reach.
    """
    record.attack("rmia1", rmia_attack(loop_inputs), thresholds["loop_rmia_auc_max"], policy="point")


@safecompress.mark.cost("gate")
def test_rmia_gate(gate_attacks, record, thresholds):
    """The gate: RMIA with ``gate-refs`` reference models on all members; LiRA reported beside it."""
    lira = gate_attacks["lira"]
    record.metric("lira_auc", lira.auc.value)
    record.metric("lira_tpr_at_1pct_fpr", lira.tpr_at(0.01).tpr.value)
    record.attack("rmia", gate_attacks["rmia"], thresholds["rmia_auc_max"])


@safecompress.mark.cost("gate")
def test_no_more_leaky_than_dense(model, dense_model, data, device, seed, record, thresholds):
    """Compression must not add leakage: loss-attack AUC of compressed minus dense, paired DeLong
    (same samples), failing only when the whole interval is above the tolerance.

    ``dense_model`` exists inside ``safecompress compress`` and with ``safecompress test --dense PARENT``;
    without one this test skips.
    """
    compressed, dense = (loss_attack(make_attack_inputs(m, data, device=device, seed=seed)) for m in (model, dense_model))
    difference = delong_difference(compressed.scores, dense.scores, compressed.membership)
    record.metric("dense_loss_auc", dense.auc.value)
    record.at_most("loss_auc_minus_dense", difference.value, thresholds["dense_auc_tolerance"], interval=(difference.low, difference.high))
