"""The compress benchmark's harness: plan, arm settings, selection ablation, statistics, claim, rendering.

Fast tests use synthetic records; the one end-to-end run (tiny data, two epochs) is marked slow.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from safecompress.bench import compress as bench
from safecompress.bench import gate as bench_gate
from safecompress.bench import plan as bench_plan
from safecompress.bench import results as bench_results
from safecompress.driver.settings import CompressSettings

ROOT = Path(__file__).resolve().parents[2]


# --- plan -----------------------------------------------------------------------------------------
def test_quick_plan_is_one_seed_one_density_fashion_only() -> None:
    plan = bench_plan.make_plan(quick=True)
    assert [t.name for t in plan.tasks] == ["fashion-mnist"]
    task = plan.tasks[0]
    assert task.seeds == (0,) and task.densities == (0.1,) and plan.refs >= 4
    assert task.data_options["members"] == 1000 and task.arms == bench_plan.QUICK_ARMS and set(task.arms) <= set(bench_plan.ARMS)
    assert set(bench_plan.make_plan().tasks[0].arms) == set(bench_plan.ARMS)
    frontier_arms = {"early-stop", "adv-always", "relaxloss-always", *bench_plan.DP_ARMS, "sc-no-selection", "sc-remedies"}
    assert frontier_arms <= set(task.arms) and task.sparser == (0.02,)  # every arm of the frontier, and the "just go sparser" curve


def test_full_plan_has_three_seeds_two_densities_and_text_or_a_note(tmp_path: Path) -> None:
    plan = bench_plan.make_plan(wordnet_root=tmp_path)  # no WordNet there
    fashion = plan.tasks[0]
    assert fashion.seeds == (0, 1, 2) and fashion.densities == (0.1, 0.05) and fashion.recipe["epochs"] == 60
    assert fashion.sparser == (0.02,) and bench_plan.make_plan(claim_only=True).tasks[0].sparser == ()  # plain DST only
    assert [t.name for t in plan.tasks] == ["fashion-mnist"] and "text task skipped" in plan.skipped[0]
    (tmp_path / "data.noun").write_text("")
    plan = bench_plan.make_plan(wordnet_root=tmp_path)
    assert [t.name for t in plan.tasks] == ["fashion-mnist", "wordnet"] and not plan.skipped


@pytest.mark.parametrize(("text", "expected"), [("3", (0, 1, 2)), ("4,7", (4, 7)), (None, None), ("1", (0,))])
def test_parse_seeds(text: str, expected: tuple) -> None:
    assert bench.parse_seeds(text) == expected
    assert bench_plan.make_plan(quick=True, seeds=bench.parse_seeds("2")).tasks[0].seeds == (0, 1)


def test_every_arm_has_a_label() -> None:
    assert set(bench_plan.ARMS) | {bench_plan.NEXT_DOWN} <= set(bench_results.ARM_LABELS)


def test_arms_option_keeps_dense_and_the_plan_order_and_refuses_unknown_arms() -> None:
    assert bench_plan.make_plan(claim_only=True, arms=("sc-budget", "plain-dst")).tasks[0].arms == ("dense", "plain-dst", "sc-budget")
    with pytest.raises(ValueError, match="unknown arm"):
        bench_plan.make_plan(arms=("plain-dst", "nonsense"))
    from safecompress.cli import main

    assert main(["bench", "compress", "--arms", "plain-dst,nonsense"]) == 4  # a usage error, before anything trains


def test_parse_seeds_refuses_zero() -> None:
    with pytest.raises(ValueError):
        bench.parse_seeds("0")


def test_next_density_down() -> None:
    assert bench_plan.next_density_down(0.1, (0.1, 0.05)) == 0.05
    assert bench_plan.next_density_down(0.1, (0.1,)) == 0.05
    assert bench_plan.next_density_down(0.05, (0.1, 0.05)) == 0.025


# --- arms -----------------------------------------------------------------------------------------
def test_arms_share_budget_schedule_and_start_and_differ_only_where_they_should(tmp_path: Path) -> None:
    base = CompressSettings(candidates=4, probe_steps=2, updates=8, lambda_=1.0)
    arms = {arm: bench.arm_settings(arm, 0.1, 3, base, tmp_path) for arm in bench_plan.ARMS if arm != "dense"}
    for settings in arms.values():
        assert (settings.density, settings.seed, settings.epochs, settings.stop_fraction, settings.distribution, settings.init) == (0.1, 3, None, 0.1, "erk", "magnitude")
        assert not settings.resume
    assert arms["plain-dst"].candidates == 1 and arms["plain-dst"].probe_steps == 0 and not arms["plain-dst"].remedies and arms["plain-dst"].updates == 8
    assert arms["one-shot"].updates == 0 and not arms["one-shot"].remedies
    assert arms["accuracy-select"].lambda_ == 0.0 and not arms["accuracy-select"].remedies and arms["accuracy-select"].candidates == 4
    assert arms["sc-select"].lambda_ == 1.0 and not arms["sc-select"].remedies and arms["sc-select"].probe_steps == 2
    assert arms["sc-remedies"].remedies and arms["sc-remedies"].candidates == 4
    no_selection = arms["sc-no-selection"]  # steering without selection: plain DST's one mask, the tests steer
    assert no_selection.remedies and (no_selection.candidates, no_selection.probe_steps, no_selection.strategies) == (1, 0, ("random:0",))
    assert (no_selection.attempts, no_selection.ship_from) == (arms["sc-remedies"].attempts, arms["sc-remedies"].ship_from)
    for arm in bench.FIXED_REMEDY_ARMS:  # plain DST's schedule, untested; the remedy is fixed by the loop's fixed_remedies
        fixed = arms[arm]
        assert (fixed.candidates, fixed.probe_steps, fixed.final_checks, fixed.remedies, fixed.attempts, fixed.updates) == (1, 0, 0, False, 1, 8)
    assert bench.FIXED_REMEDY_ARMS["adv-always"] == {"adversarial_regularization": 0.1}
    early = arms["early-stop"]  # plain DST's schedule; only the performance tests judge
    assert not early.remedies and (early.candidates, early.probe_steps, early.strategies, early.attempts) == (1, 0, ("random:0",), 1) and early.ship_from == "anywhere"
    budgeted = arms["sc-budget"]  # compress's configuration; the budget trims it when the run starts
    assert budgeted.budget == bench_plan.SC_BUDGET == 1.3 and dataclasses.replace(budgeted, budget=None) == arms["sc-remedies"]
    assert bench.arm_settings(bench_plan.NEXT_DOWN, 0.05, 3, base, tmp_path).density == 0.05
    with pytest.raises(ValueError):
        bench.arm_settings("nonsense", 0.1, 0, base, tmp_path)


def test_accuracy_only_selection_ignores_failures_and_risk() -> None:
    cands = [
        SimpleNamespace(name="a", utility=0.80, failures=0.0, score=0.9),
        SimpleNamespace(name="b", utility=0.85, failures=1.0, score=0.1),
        SimpleNamespace(name="c", utility=0.85, failures=0.0, score=0.5),
    ]
    assert bench.AccuracyOnlySelection().safecompress_select_candidate(cands, None).name == "b"  # ties go to the first
    assert bench.AccuracyOnlySelection().safecompress_select_candidate([], None) is None


def test_accuracy_only_selection_wins_over_the_default_hook() -> None:
    from safecompress.driver.selection import Candidate
    from safecompress.plugins import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    safe, accurate = Candidate("safe", None, []), Candidate("accurate", None, [])
    safe.failures, safe.score, safe.utility = 0.0, 0.9, 0.80
    accurate.failures, accurate.score, accurate.utility = 1.0, 0.1, 0.85
    assert pm.hook.safecompress_select_candidate(candidates=[safe, accurate], config=None).name == "safe"
    plugin = bench.AccuracyOnlySelection()
    pm.register(plugin)
    assert pm.hook.safecompress_select_candidate(candidates=[safe, accurate], config=None).name == "accurate"
    pm.unregister(plugin)
    assert pm.hook.safecompress_select_candidate(candidates=[safe, accurate], config=None).name == "safe"


# --- statistics and the claim ---------------------------------------------------------------------
def record(arm: str, seed: int, density: float, rmia: float, accuracy: float, loss: float = 0.55, share: float = 0.0) -> dict:
    def attack(auc: float) -> dict:
        return {"auc": {"value": auc, "low": auc - 0.03, "high": auc + 0.03}, "tpr_at_1pct_fpr": {"value": 0.02, "low": 0.01, "high": 0.04, "reliable": True}}

    return {
        "task": "fashion-mnist",
        "seed": seed,
        "density": density,
        "arm": arm,
        "test_accuracy": {"value": accuracy, "low": accuracy - 0.01, "high": accuracy + 0.01},
        "attacks": {"rmia": attack(rmia), "lira": attack(rmia - 0.01), "loss": attack(loss), "mentr": attack(loss + 0.02)},
        "seconds": 10.0 + seed,
        "safety_test_share": share,
        "timers": None,
        "diagnostics": None,
    }


def records_for(sc_rmia: float, sc_accuracy: float = 0.80, sc_loss: float = 0.55) -> list[dict]:
    out = []
    for seed, jitter in enumerate((0.0, 0.004, -0.004)):
        out += [
            record("dense", seed, 1.0, 0.68 + jitter, 0.82),
            record("plain-dst", seed, 0.1, 0.64 + jitter, 0.80),
            record("accuracy-select", seed, 0.1, 0.635 + jitter, 0.805),
            record("sc-select", seed, 0.1, sc_rmia + jitter, sc_accuracy, sc_loss, 0.3),
            record("sc-remedies", seed, 0.1, sc_rmia + jitter, sc_accuracy, sc_loss, 0.3),
            record("plain-dst", seed, 0.05, 0.62 + jitter, 0.78),
        ]
    return out


def test_mean_se() -> None:
    assert bench_results.mean_se([1.0, 2.0, 3.0]) == pytest.approx({"mean": 2.0, "se": 1.0 / 3**0.5, "n": 3})
    assert bench_results.mean_se([5.0]) == {"mean": 5.0, "se": None, "n": 1}
    assert bench_results.mean_se([]) == {"mean": None, "se": None, "n": 0}


def test_summary_rows_are_mean_and_se_over_seeds() -> None:
    rows = bench_results.summarize(records_for(0.60))
    plain = next(r for r in rows if r["arm"] == "plain-dst" and r["density"] == 0.1)
    assert plain["seeds"] == [0, 1, 2] and plain["rmia_auc"]["mean"] == pytest.approx(0.64) and plain["rmia_auc"]["se"] > 0
    assert plain["rmia_auc_ci"] == pytest.approx([0.61, 0.67]) and plain["seconds"]["mean"] == pytest.approx(11.0)
    assert [r["arm"] for r in rows][:2] == ["dense", "plain-dst"]  # dense first, then by density descending


def test_cost_ratio_is_paired_by_seed_against_plain_dst() -> None:
    records = records_for(0.60)  # plain DST and SafeCompress both take 10 + seed seconds
    for r in records:
        if r["arm"] == "sc-remedies":
            r["seconds"] *= 3.0  # of which training 1.5×, probes 0.3×, tests 1.2× plain DST's time; two attempts
            r["timers"] = {"train_s": 1.5 * (10 + r["seed"]), "probe_s": 0.3 * (10 + r["seed"]), "tests_s": 1.2 * (10 + r["seed"])}
            r["attempts"] = [{"attempt": 1}, {"attempt": 2}]
    ratios = bench_results.cost_ratios(records, ["sc-select", "sc-remedies"])
    assert ratios["sc-select"]["mean"] == pytest.approx(1.0) and ratios["sc-select"]["holds"]
    assert ratios["sc-remedies"]["mean"] == pytest.approx(3.0) and ratios["sc-remedies"]["holds"] is False and ratios["sc-remedies"]["n"] == 3
    assert ratios["sc-remedies"]["phases"] == pytest.approx({"train": 1.5, "probe": 0.3, "tests": 1.2}) and ratios["sc-remedies"]["attempts"] == 2
    markdown = bench_results.render_markdown({**bench._assemble(bench_plan.make_plan(seeds=(0, 1, 2), claim_only=True), records, {"compress": {}, "thresholds": {}}, "cpu", 60.0), "command": "x"})
    assert "took 3.00× ± 0.00 plain DST's wall time (over the 1.5× limit; n = 3); per phase" in markdown
    assert "in plain DST's wall times: training 1.50×, candidate probes 0.30×, in-loop tests 1.20×, 2.0 attempts" in markdown


def test_claim_holds_when_every_condition_does() -> None:
    claim = bench_results.check_claim(records_for(0.60), "sc-remedies")
    assert claim["holds"] is True, claim
    assert claim["conditions"]["rmia_gain_vs_plain_dst"]["mean"] == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("kwargs", "failing"),
    [
        ({"sc_rmia": 0.625}, "rmia_gain_vs_plain_dst"),
        ({"sc_rmia": 0.60, "sc_accuracy": 0.785}, "accuracy_vs_plain_dst"),
        ({"sc_rmia": 0.60, "sc_loss": 0.60}, "no_attack_worse_by_more_than_one_se"),
    ],
)
def test_claim_fails_on_the_condition_that_fails(kwargs: dict, failing: str) -> None:
    claim = bench_results.check_claim(records_for(**kwargs), "sc-select")
    assert claim["holds"] is False and claim["conditions"][failing]["holds"] is False


def test_claim_needs_to_beat_the_next_density_down() -> None:
    records = [r for r in records_for(0.60) if not (r["arm"] == "plain-dst" and r["density"] == 0.05)]
    records += [record(bench_plan.NEXT_DOWN, s, 0.05, 0.59, 0.76) for s in range(3)]
    claim = bench_results.check_claim(records, "sc-select")
    assert claim["conditions"]["beats_plain_dst_next_density_down"]["holds"] is False


def test_claim_is_undecided_with_one_seed() -> None:
    records = [r for r in records_for(0.60) if r["seed"] == 0]
    claim = bench_results.check_claim(records, "sc-select")
    assert claim["holds"] is None and claim["conditions"]["rmia_gain_vs_plain_dst"]["holds"] is True


def test_summarize_decisions() -> None:
    def cand(name: str, acc: float, auc: float, red: bool = False) -> dict:
        return {"name": name, "accuracy": acc, "metrics": {"rmia1_auc": auc}, "outcomes": {"safety_tests/test_membership.py::test_rmia_in_loop": "failed" if red else "passed"}}

    decisions = [
        {"winner": "b", "candidates": [cand("a", 0.9, 0.62), cand("b", 0.88, 0.58)], "remedy_weights": {}},
        {"winner": "a", "candidates": [cand("a", 0.9, 0.61, red=True), cand("b", 0.8, 0.60)], "remedy_weights": {"confidence_penalty": 0.1}},
    ]
    summary = bench_gate.summarize_decisions(decisions)
    assert summary["updates"] == 2 and summary["winners"] == ["b", "a"]
    assert summary["mean_candidate_rmia1_auc_spread"] == pytest.approx(0.025)
    assert summary["share_winner_not_most_accurate"] == pytest.approx(0.5)
    assert summary["mean_winner_minus_most_accurate_rmia1_auc"] == pytest.approx(-0.02)
    assert summary["share_updates_in_loop_rmia_red"] == pytest.approx(0.5)


def test_render_markdown_has_table_and_verdicts() -> None:
    plan = bench_plan.make_plan(quick=True)
    results = bench._assemble(plan, records_for(0.60), {"compress": {}, "thresholds": {}}, "cpu", 123.0)
    text = bench_results.render_markdown(results, "safecompress bench compress --quick")
    assert "safecompress bench compress --quick" in text and "| plain DST (SET, no tests) | 0.1 | 80.00 ± 0.00 |" in text
    assert "SafeCompress, selection + remedies" in text and "**holds**" in text
    json.dumps(results)  # JSON-ready


# --- end to end on tiny data ----------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_benchmark_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    task = bench_plan.TaskSpec(
        name="fashion-mnist",
        data="fashion-mnist-embedded",
        data_options={"members": 64, "non_members": 64, "population": 128, "test": 64},
        recipe={"epochs": 10, "batch_size": 32, "lr": 1e-3, "optimizer": "adam"},  # 20 steps: room for 2 updates
        model="small_cnn",
        model_options={"width": 4},
        densities=(0.1,),
        sparser=(0.02,),
        seeds=(0,),
    )
    lines: list[str] = []
    checkpoints: list[int] = []
    plan = bench_plan.BenchPlan((task,), refs=2, gate_checkpoints=True)
    results = bench.run_compress_benchmark(plan, device="cpu", rootdir=ROOT, log=lines.append, checkpoint=lambda r: checkpoints.append(len(r["records"])))
    arms = [(r["arm"], r["density"]) for r in results["records"]]
    assert arms == [("dense", 1.0), *((a, 0.1) for a in bench_plan.ARMS[1:]), ("plain-dst", 0.02), (bench_plan.NEXT_DOWN, 0.05)]
    assert checkpoints == list(range(1, len(arms) + 1))
    for r in results["records"]:
        assert 0.0 <= r["attacks"]["rmia"]["auc"]["value"] <= 1.0 and 0.0 <= r["test_accuracy"]["value"] <= 1.0
        if r["arm"] != "dense":
            assert r["achieved_density"] == pytest.approx(r["density"], abs=0.01)
    by_arm = {r["arm"]: r for r in results["records"]}
    # every compressed arm carries the gate's verdict on the project's requirements, as `safecompress test` judges them
    requirements = {"safety_tests/test_membership.py::test_rmia_gate", "safety_tests/test_membership.py::test_no_more_leaky_than_dense", "safety_tests/test_accuracy.py::test_held_out_accuracy"}
    for r in results["records"]:
        if r["arm"] == "dense":
            assert "verdict" not in r
            continue
        verdict = r["verdict"]
        assert set(verdict["outcomes"]) == requirements and verdict["passed"] == (not verdict["red"]), r["arm"]
        assert set(verdict["red"]) == {n for n, o in verdict["outcomes"].items() if o in ("failed", "error")}
    # --gate-checkpoints: every judged checkpoint of a SafeCompress arm carries its requirements' outcomes too
    gated = {(r["arm"], r["density"]): r for r in results["records"]}
    for arm in bench_plan.SAFECOMPRESS_ARMS:
        checkpoints_gated = gated[(arm, 0.1)].get("checkpoint_gates") or []
        assert checkpoints_gated and all({"test_rmia_gate", "test_rmia_in_loop"} <= set(c["tests"]) for c in checkpoints_gated), arm
    labels = [c["label"] for arm in bench_plan.SAFECOMPRESS_ARMS for c in gated[(arm, 0.1)]["checkpoint_gates"]]
    assert any(label.startswith("final phase") for label in labels) and any("retraining segment" in label for label in labels)  # the loop's judged checkpoints, both kinds
    assert "checkpoint_gates" not in gated[("plain-dst", 0.1)]
    assert results["prediction"]["test_rmia_in_loop"]["target_met"] + results["prediction"]["test_rmia_in_loop"]["target_missed"] > 0
    assert "How well in-loop evidence predicts the gate" in bench_results.render_markdown(results)
    rows = {(row["arm"], row["density"]): row for row in results["summary"]}
    assert rows[("plain-dst", 0.1)]["gate"]["n"] == 1 and rows[("dense", 1.0)]["gate"]["n"] == 0
    assert results["verdict_claim"]["conditions"]["green"]["value"] in ("0/1", "1/1")
    assert "| gate green |" in bench_results.render_markdown(results)
    assert by_arm["plain-dst"]["safety_test_share"] < 0.05 and by_arm["sc-select"]["safety_test_share"] > 0.0
    assert by_arm["sc-select"]["diagnostics"]["updates"] >= 1
    assert all(nodeid.endswith("test_accuracy") for nodeid in by_arm["early-stop"]["shipped"]["margins"])  # no privacy signal
    assert by_arm["sc-no-selection"]["remedy_weights"]  # the tests steered its remedies
    assert by_arm["adv-always"]["remedy_weights"] == {"adversarial_regularization": 0.1} and by_arm["relaxloss-always"]["remedy_weights"] == {"relaxloss": 1.0}
    assert by_arm["adv-always"]["safety_test_share"] < 0.05  # nothing judged it in the loop
    for arm, epsilon in bench_plan.DP_ARMS.items():  # Opacus's accountant spent what the arm was given
        assert by_arm[arm]["privacy"]["epsilon"] == pytest.approx(epsilon, rel=0.02) and by_arm[arm]["privacy"]["delta"] == pytest.approx(1 / 64)
    assert by_arm["dp-sgd-eps1"]["privacy"]["noise_multiplier"] > by_arm["dp-sgd-eps8"]["privacy"]["noise_multiplier"]
    # the shared-reference gate is run_attacks with the same references, row for row
    from safecompress.attacks import run_attacks
    from safecompress.data import fashion_mnist_embedded
    from safecompress.models import small_cnn
    from safecompress.training import TrainRecipe, fit

    data = fashion_mnist_embedded(members=64, non_members=64, population=128, test=64, seed=0)
    recipe = TrainRecipe(epochs=2, batch_size=32)
    model = fit(small_cnn(10, width=4), data.members, recipe, seed=0, device="cpu")
    refs = bench_gate.gate_references(model, data, recipe, 0, "cpu", 2)
    mine = bench_gate.gate_metrics(model, data, refs, 0, "cpu")
    theirs = run_attacks(["rmia", "lira", "loss", "mentr"], model, data, device="cpu", refs=2, recipe=recipe, seed=0)
    for name, result in theirs.items():
        assert mine["attacks"][name]["auc"]["value"] == pytest.approx(result.auc.value)
    assert "SafeCompress, selection only" in bench_results.render_markdown(results)


# --- merging runs over disjoint seeds -------------------------------------------------------------
def part(seeds: tuple[int, ...], seconds: float, command: str) -> dict:
    plan = bench_plan.make_plan(quick=True, seeds=seeds)
    results = bench._assemble(plan, [r for r in records_for(0.60) if r["seed"] in seeds], {"compress": {}, "thresholds": {}}, "cpu", seconds)
    return {**results, "command": command}


def test_merged_runs_equal_one_run_over_all_seeds() -> None:
    merged = bench.merge_results([part((0, 1), 600.0, "run a"), part((2,), 300.0, "run b")])
    whole = bench._assemble(bench_plan.make_plan(quick=True, seeds=(0, 1, 2)), records_for(0.60), {"compress": {}, "thresholds": {}}, "cpu", 600.0)
    assert merged["summary"] == whole["summary"] and merged["claims"] == whole["claims"]
    assert merged["tasks"][0]["seeds"] == [0, 1, 2] and merged["total_seconds"] == 600.0
    assert [p["command"] for p in merged["merged_from"]] == ["run a", "run b"]
    assert [c["arm"] for c in merged["claims"]] == ["sc-select", "sc-remedies"]  # arms the records lack (sc-no-selection, sc-final-phase) get no claim


def test_merge_adds_arms_to_seeds_measured_before_when_the_shared_runs_reproduce() -> None:
    earlier = part((0, 1, 2), 900.0, "every arm")
    added = [record("dense", s, 1.0, 0.68 + j, 0.82) for s, j in enumerate((0.0, 0.004, -0.004))]
    added += [record("plain-dst", s, 0.1, 0.64 + j, 0.80) for s, j in enumerate((0.0, 0.004, -0.004))]
    added += [record("sc-budget", s, 0.1, 0.61, 0.80) for s in range(3)]
    for r in added:  # another machine load: plain DST took 20 s in this run, sc-budget 26 s
        r["seconds"] = {"plain-dst": 20.0, "sc-budget": 26.0}.get(r["arm"], 30.0)
    later = {**bench._assemble(bench_plan.make_plan(quick=True, seeds=(0, 1, 2), arms=("plain-dst", "sc-budget")), added, {"compress": {}, "thresholds": {}}, "cpu", 100.0), "command": "new arm"}
    merged = bench.merge_results([earlier, later])
    assert len(merged["reproduced"]) == 6 and "fashion-mnist seed 0 d=0.1 plain-dst" in merged["reproduced"]
    assert {r["arm"] for r in merged["records"]} == {r["arm"] for r in earlier["records"]} | {"sc-budget"}
    assert len(merged["records"]) == len(earlier["records"]) + 3 and "sc-budget" in merged["tasks"][0]["arms"]
    assert merged["cost_ratios"]["sc-budget"]["mean"] == pytest.approx(1.3)  # paired with plain DST of its own run (20 s), not the earlier run's
    assert merged["cost_ratios"]["sc-remedies"]["mean"] == pytest.approx(earlier["cost_ratios"]["sc-remedies"]["mean"])


def test_merge_refuses_overlapping_seeds_and_different_settings() -> None:
    from safecompress.errors import UsageError

    changed = part((1, 2), 1.0, "b")
    changed["records"][0]["attacks"]["rmia"]["auc"]["value"] += 0.001  # seed 1 again, but not the same run
    with pytest.raises(UsageError, match="seed 1 dense differs between the files"):
        bench.merge_results([part((0, 1), 1.0, "a"), changed])
    other = part((2,), 1.0, "b")
    other["project_settings"] = {**other["project_settings"], "thresholds": {"rmia_auc_max": 0.6}}
    with pytest.raises(UsageError, match="different project settings"):
        bench.merge_results([part((0, 1), 1.0, "a"), other])


def test_merge_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safecompress.cli import main

    for name, seeds in (("a.json", (0, 1)), ("b.json", (2,))):
        (tmp_path / name).write_text(json.dumps(part(seeds, 60.0 * len(seeds), f"safecompress bench compress --seeds {name}")))
    code = main(["bench", "compress", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json", str(tmp_path / "m.json"), "--markdown", str(tmp_path / "m.md")])
    assert code == 0
    markdown = (tmp_path / "m.md").read_text()
    assert "--seeds a.json + safecompress bench compress --seeds b.json" in markdown and "**holds**" in markdown
    assert json.loads((tmp_path / "m.json").read_text())["summary"] == bench.merge_results([json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json")])["summary"]
    assert main(["bench", "compress", "--merge", str(tmp_path / "missing.json")]) != 0
    assert "missing.json does not exist" in capsys.readouterr().out
