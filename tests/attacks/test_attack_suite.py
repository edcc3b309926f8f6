"""Data-in/results-out behaviour of every attack on synthetic outputs (no training, fast)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
from _attack_support import one_thread  # noqa: F401  (a fixture)

from safecompress.attacks import BUILTIN_ATTACKS, AttackInputs, AttackResults, Role, assign_roles, loss_attack, rmia_attack
from safecompress.attacks.bench import run_attack_benchmark, synthetic_attack_inputs
from safecompress.attacks.lira import lira_attack
from safecompress.attacks.registry import safecompress_register_attacks
from safecompress.attacks.rmia import rmia_scores, rmia_scores_pairwise, tune_a

# Attacks on cached outputs; those that query the model (pgd, fgsm, inversion) have their own known-leak and null
# cases in test_robustness_inversion.py.
ON_ATTACK_INPUTS = sorted(name for name, spec in BUILTIN_ATTACKS.items() if not spec.queries_model)

pytestmark = pytest.mark.usefixtures("one_thread")


def _with_gradients(inputs: AttackInputs, seed: int) -> AttackInputs:
    """Gradient features that carry exactly the leakage in the outputs: the loss, plus noise."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(len(inputs), 8))
    return replace(inputs, gradients=np.c_[inputs.per_sample_loss(), noise].astype(np.float32))


def _run(name: str, inputs: AttackInputs) -> AttackResults:
    options = {"device": "cpu", "seed": 0, "max_epochs": 40} if BUILTIN_ATTACKS[name].tier == 1 else {}
    return BUILTIN_ATTACKS[name](inputs, **options)


@pytest.fixture(scope="module")
def null_inputs() -> AttackInputs:
    return _with_gradients(synthetic_attack_inputs(2_000, 2_000, n_refs=4, signal=0.0, seed=11), 11)


@pytest.fixture(scope="module")
def leaky_inputs() -> AttackInputs:
    return _with_gradients(synthetic_attack_inputs(2_000, 2_000, n_refs=4, signal=1.5, seed=12), 12)


@pytest.mark.parametrize("name", ON_ATTACK_INPUTS)
def test_every_attack_is_blind_without_leakage(name: str, null_inputs: AttackInputs) -> None:
    result = _run(name, null_inputs)
    assert result.n_members == result.n_non_members == 500
    assert abs(result.auc.value - 0.5) < 0.06, result.summary()
    assert result.tpr_at(0.01).tpr.value < 0.05


@pytest.mark.parametrize("name", ON_ATTACK_INPUTS)
def test_every_attack_sees_a_known_leak(name: str, leaky_inputs: AttackInputs) -> None:
    result = _run(name, leaky_inputs)
    assert result.auc.low > 0.55, result.summary()
    assert result.tier == BUILTIN_ATTACKS[name].tier


def test_reference_attacks_beat_the_loss_attack_when_difficulty_varies(leaky_inputs: AttackInputs) -> None:
    """Per-sample difficulty hides members from a global threshold; references calibrate it away."""
    loss = loss_attack(leaky_inputs)
    for attack in (lira_attack, rmia_attack):
        strong = attack(leaky_inputs)
        assert strong.auc.value > loss.auc.value + 0.05
        assert strong.tpr_at(0.01).tpr.value > 2 * loss.tpr_at(0.01).tpr.value


def test_results_are_json_serialisable_and_summarised(leaky_inputs: AttackInputs) -> None:
    result = rmia_attack(leaky_inputs)
    data = json.loads(json.dumps(result.to_dict(include_scores=True)))
    assert data["attack"] == "rmia" and data["tier"] == 2
    assert set(data["tpr_at_fpr"]) == {"0.01", "0.001"}
    assert data["auc"]["method"] == "delong" and data["auc"]["low"] <= data["auc"]["value"] <= data["auc"]["high"]
    assert len(data["scores"]) == 1000 and data["roc"]["fpr"][0] == 0.0
    assert data["extra"]["a_tuned_on"] == "references"
    assert set(data["slices"]) == {f"class={c}" for c in range(10)}
    text = result.summary()
    assert "rmia (tier 2): AUC" in text and "TPR@1.0% FPR" in text and "not meaningful" in text  # 500 non-members at 0.1 %
    with pytest.raises(KeyError, match="computed at FPR"):
        result.tpr_at(0.05)


def test_results_from_bare_scores_without_calibration() -> None:
    rng = np.random.default_rng(0)
    result = AttackResults.from_scores("custom", rng.normal(size=200) + np.r_[np.ones(100), np.zeros(100)], np.r_[np.ones(100), np.zeros(100)])
    assert result.balanced_accuracy is None and result.epsilon is None and result.threshold is None
    assert "no calibration scores" in result.summary()
    assert result.auc.value > 0.7


def test_probabilities_and_logits_give_the_same_attack(leaky_inputs: AttackInputs) -> None:
    as_probs = replace(leaky_inputs, logits=None, probs=leaky_inputs.probabilities(), ref_logits=None, ref_probs=np.exp(leaky_inputs.ref_log_probs()))
    assert loss_attack(as_probs).auc.value == pytest.approx(loss_attack(leaky_inputs).auc.value, abs=1e-9)
    assert rmia_attack(as_probs).auc.value == pytest.approx(rmia_attack(leaky_inputs).auc.value, abs=1e-6)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_sorted_rmia_scores_equal_the_pairwise_definition(gamma: float) -> None:
    rng = np.random.default_rng(int(gamma * 10))
    x, z = rng.normal(size=300), rng.normal(size=257)
    np.testing.assert_array_equal(rmia_scores(x, z, gamma), rmia_scores_pairwise(x, z, gamma))
    tied_x, tied_z = rng.integers(-3, 4, 200).astype(float), rng.integers(-3, 4, 100).astype(float)
    np.testing.assert_array_equal(rmia_scores(tied_x, tied_z, gamma), rmia_scores_pairwise(tied_x, tied_z, gamma))
    brute = np.array([[xi / zi >= gamma for zi in np.exp(tied_z)] for xi in np.exp(tied_x)]).mean(axis=1)
    np.testing.assert_allclose(rmia_scores(tied_x, tied_z, gamma), brute)


def test_rmia_tunes_a_on_references_or_falls_back_to_calibration() -> None:
    assert tune_a(synthetic_attack_inputs(600, 600, n_refs=4, seed=1))[1] == "references"
    assert tune_a(synthetic_attack_inputs(600, 600, n_refs=2, seed=1))[1] == "calibration"  # a complementary pair cannot attack itself
    fixed = rmia_attack(synthetic_attack_inputs(600, 600, n_refs=2, seed=1), a=0.3)
    assert fixed.extra["a"] == 0.3 and fixed.extra["a_tuned_on"] == "given"


def test_online_attacks_use_in_models_when_they_exist() -> None:
    online = synthetic_attack_inputs(1_000, 1_000, n_refs=4, signal=1.5, online=True, seed=3)
    offline = synthetic_attack_inputs(1_000, 1_000, n_refs=4, signal=1.5, seed=3)
    for attack in (lira_attack, rmia_attack):
        assert attack(online).extra["online"] is True
        assert attack(offline).extra["online"] is False
        assert attack(online, online=False).extra["online"] is False
        with pytest.raises(ValueError, match="online"):
            attack(offline, online=True)
    assert lira_attack(online).auc.value > 0.6


def test_lira_switches_to_per_example_variance_with_many_references() -> None:
    many = synthetic_attack_inputs(400, 400, n_refs=32, signal=1.5, online=True, seed=4)
    assert lira_attack(many).extra["variance"] == "per_example"
    assert lira_attack(many, variance="global").extra["variance"] == "global"
    assert lira_attack(synthetic_attack_inputs(400, 400, n_refs=4, seed=4)).extra["variance"] == "global"


def test_mentr_fits_one_threshold_per_class(leaky_inputs: AttackInputs) -> None:
    result = BUILTIN_ATTACKS["mentr"](leaky_inputs)
    assert len(result.extra["class_thresholds"]) == 10 and result.extra["class_dependent"]
    gap = BUILTIN_ATTACKS["gap"](leaky_inputs).extra["generalization_gap"]
    assert gap["accuracy_gap"]["value"] > 0 and gap["loss_gap"]["low"] > 0


def test_roles_are_disjoint_balanced_and_seeded() -> None:
    roles = assign_roles(300, 500, calibration_fraction=0.5, seed=7)
    members, non_members = roles[:300], roles[300:]
    assert (members == Role.EVALUATION).sum() == (non_members == Role.EVALUATION).sum() == 150
    assert (non_members == Role.CALIBRATION).sum() == 350  # the unbalanced surplus calibrates
    np.testing.assert_array_equal(roles, assign_roles(300, 500, 0.5, seed=7))
    assert not np.array_equal(roles, assign_roles(300, 500, 0.5, seed=8))


def test_from_outputs_builds_the_default_protocol() -> None:
    rng = np.random.default_rng(0)
    inputs = AttackInputs.from_outputs(rng.normal(size=(40, 3)), rng.integers(0, 3, 40), rng.normal(size=(60, 3)), rng.integers(0, 3, 60), rng.normal(size=(30, 3)), rng.integers(0, 3, 30))
    assert len(inputs) == 130 and (inputs.role[100:] == Role.POPULATION).all()
    assert inputs.membership[:40].all() and not inputs.membership[40:].any()


def test_inputs_are_validated() -> None:
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(4, 3)), np.array([0, 1, 2, 0])
    ok = dict(labels=labels, membership=[1, 1, 0, 0], role=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="exactly one"):
        AttackInputs(**ok, logits=logits, probs=np.exp(logits))
    with pytest.raises(ValueError, match="population rows"):
        AttackInputs(**{**ok, "role": [2, 1, 1, 1]}, logits=logits)
    with pytest.raises(ValueError, match="both members and non-members"):
        AttackInputs(**{**ok, "membership": [1, 1, 1, 1]}, logits=logits)
    with pytest.raises(ValueError, match="labels must lie"):
        AttackInputs(**{**ok, "labels": [0, 1, 2, 3]}, logits=logits)
    with pytest.raises(ValueError, match="reference outputs"):
        AttackInputs(**ok, logits=logits, ref_logits=rng.normal(size=(2, 3, 3)))
    with pytest.raises(ValueError, match="reference-model outputs"):
        rmia_attack(AttackInputs(**ok, logits=logits))


def test_builtins_register_through_the_plugin_hook() -> None:
    registered: dict[str, object] = {}
    safecompress_register_attacks(lambda name, attack: registered.__setitem__(name, attack))
    assert registered == dict(BUILTIN_ATTACKS)
    assert {spec.tier for spec in BUILTIN_ATTACKS.values()} == {0, 1, 2}
    assert [n for n, s in BUILTIN_ATTACKS.items() if "references" in s.needs] == ["lira", "rmia"]


def test_benchmark_reports_timings_and_checks_the_sorted_scores() -> None:
    report = run_attack_benchmark(n_targets=1_000, n_population=800, n_refs=4, pairwise_sample=200, repeats=1)
    assert report["sorted_equals_pairwise"] is True
    assert report["rmia_sorted_scoring_s"] >= 0 and report["rmia_attack_s"] >= 0
    assert 0.5 < report["rmia_auc"] <= 1 and 0.5 < report["lira_auc"] <= 1


def test_plots_write_pngs(leaky_inputs: AttackInputs, tmp_path: pytest.TempPathFactory) -> None:
    pytest.importorskip("matplotlib")
    from safecompress.plots import plot_roc, plot_score_histogram

    results = [loss_attack(leaky_inputs), rmia_attack(leaky_inputs)]
    for path in (plot_roc(results, tmp_path / "roc.png"), plot_score_histogram(results[1], tmp_path / "hist.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_explain_a_missing_matplotlib(leaky_inputs: AttackInputs, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from safecompress.plots import plot_roc

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"safecompress\[plots\]"):
        plot_roc(loss_attack(leaky_inputs), tmp_path / "roc.png")
