"""How a project uses the plugin once it is installed: the fixture, the attack by name, the remedy.

Copy this file into a project's safety_tests/ (e.g. examples/fashion_mnist/safety_tests/).
"""

import safecompress


@safecompress.mark.cost("gate")
def test_top2_margin_gate(top2_margin_results, record, thresholds):
    """The plugin's fixture: the attack already run on the model under test."""
    results = top2_margin_results
    limit = thresholds.get("top2_margin_auc_max", 0.65)
    record.note("top2_margin", results.summary())
    record.at_most("top2_margin_auc", results.auc.value, limit, interval=(results.auc.low, results.auc.high))


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("logit_norm", weight=0.01, max_weight=0.16)
def test_label_free_margin(model, data, device, seed, session, record, thresholds):
    """The attack by name through the registry, label-free; red switches on the plugin's remedy."""
    from safecompress.attacks import run_attack
    from safecompress.plugins import collect_registry

    attacks = collect_registry(session.pm, "safecompress_register_attacks")
    results = run_attack("top2_margin", model, data, device=device, seed=seed, registry=attacks, label_free=True)
    limit = thresholds.get("top2_margin_auc_max", 0.65)
    record.at_most("label_free_margin_auc", results.auc.value, limit, interval=(results.auc.low, results.auc.high))
