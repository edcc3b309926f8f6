"""``--budget``: the work plan (counted, not timed), what it trims and in which order, the rows of a
judgement counted on a real model, and steering that never switches on a remedy the budget left out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from compress_project import make_compress_project, run_in

from safecompress.data.splits import Split
from safecompress.driver.budget import INFERENCE_ROW_COST, Work, count_judged_rows, judged_models, plan_budget, predicted_ratio
from safecompress.driver.settings import CompressSettings
from safecompress.driver.steering import Steering
from safecompress.errors import UsageError
from safecompress.inference import predict_logits
from safecompress.models import small_cnn
from safecompress.remedies import BUILTIN_REMEDIES, RemedyContext
from safecompress.runner.reports import TestReport

# The benchmark's shape: 60 epochs of 1,000 members at batch 128 (8 steps an epoch), 2,500 rows a judgement.
WORK = Work(train_rows=60 * 8 * 128, judged_rows=2500, batch_size=128)
LADDER = [[("adversarial_regularization", {}), ("relaxloss", {})]]


def shipped_settings(**changes: object) -> CompressSettings:
    return dataclasses.replace(CompressSettings(candidates=4, probe_steps=2, updates=8, final_checks=6, attempts=2), **changes)


def test_predicted_ratio_counts_judgements_probes_remedies_and_attempts() -> None:
    settings = shipped_settings()
    assert judged_models(settings, 8) == 8 * (1 + 4) + 6
    judged = 46 * 2500 * INFERENCE_ROW_COST
    probes = 8 * 4 * 2 * 128
    counting = 2500 * INFERENCE_ROW_COST / WORK.train_rows  # the judgement that counted the rows, once
    assert predicted_ratio(settings, 8, WORK, 1.0) == pytest.approx(2 * (1 + 1.0 + (judged + probes) / WORK.train_rows) + counting)
    one = dataclasses.replace(settings, candidates=1, attempts=1)
    assert judged_models(one, 8) == 8 + 6  # a sole candidate is neither probed nor judged
    assert predicted_ratio(one, 8, WORK, 0.0) == pytest.approx(1 + 15 * 2500 * INFERENCE_ROW_COST / WORK.train_rows)


def test_budget_trims_attempts_then_costly_remedies_then_candidates() -> None:
    planned, plan = plan_budget(shipped_settings(budget=1.5), WORK, 8, LADDER, BUILTIN_REMEDIES)
    assert (planned.attempts, planned.candidates, planned.final_checks) == (1, 1, 6)
    assert plan.excluded_remedies == ["adversarial_regularization"]  # 1× a step while on: more than the 1.5× budget can carry
    assert plan.fits and plan.predicted <= 1.5
    assert plan.changed == {"attempts": 1, "candidates": 1}
    assert [note.split(":")[0].split(" left out")[0] for note in plan.notes][:2] == ["2 attempts → 1", "remedy adversarial_regularization"]


def test_a_generous_budget_changes_nothing() -> None:
    settings = shipped_settings(budget=10.0)
    planned, plan = plan_budget(settings, WORK, 8, LADDER, BUILTIN_REMEDIES)
    assert planned == settings and plan.notes == [] and plan.excluded_remedies == [] and plan.fits


def test_final_checks_go_after_the_candidates_and_an_impossible_budget_says_so() -> None:
    costly = Work(train_rows=1000, judged_rows=2500, batch_size=128)  # one judgement costs more than all of training
    planned, plan = plan_budget(shipped_settings(budget=1.2), costly, 8, [], BUILTIN_REMEDIES)
    assert (planned.candidates, planned.final_checks, planned.attempts) == (1, 0, 1)
    assert not plan.fits and "over the budget" in plan.notes[-1]


def test_a_remedy_without_a_declared_cost_fits_no_budget() -> None:
    class Unpriced:  # a plugin's remedy that does not say what it costs
        pass

    _, plan = plan_budget(shipped_settings(budget=100.0), WORK, 8, [[("unpriced", {})]], {"unpriced": Unpriced})
    assert plan.excluded_remedies == ["unpriced"] and "declares no step_cost" in plan.notes[0]


def test_budget_below_one_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--budget"):
        CompressSettings(budget=0.5)
    assert CompressSettings.from_sources({}, {"budget": 2}).budget == 2.0


def test_judged_rows_are_counted_on_a_copy_of_a_real_model() -> None:
    torch.manual_seed(0)
    model = small_cnn()
    population = Split(torch.randn(300, 1, 28, 28), torch.randint(0, 10, (300,)), torch.arange(300))
    members = Split(torch.randn(70, 1, 28, 28), torch.randint(0, 10, (70,)), torch.arange(70))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def evaluate(judged: torch.nn.Module, label: str) -> list:
        predict_logits(judged, population)
        predict_logits(judged, members)
        return []

    assert count_judged_rows(evaluate, model) == 370
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_steering_never_switches_on_an_excluded_rung() -> None:
    context = RemedyContext(num_classes=10, device=torch.device("cpu"), reference=Split(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long), torch.arange(8)))
    steering = Steering(BUILTIN_REMEDIES, lambda options: dataclasses.replace(context, options=options), excluded=frozenset({"adversarial_regularization"}))
    red = TestReport("t.py::test_rmia", "failed", remedy="adversarial_regularization", fallback_remedies=[["relaxloss", {}]])
    decisions = steering.steer([red])
    assert steering.weights() == {"relaxloss": pytest.approx(0.25)}  # the next rung, at its base weight
    assert "adversarial_regularization" not in decisions and "adversarial_regularization" not in steering.remedies
    only_excluded = TestReport("t.py::test_rmia", "failed", remedy="adversarial_regularization")
    fresh = Steering(BUILTIN_REMEDIES, lambda options: dataclasses.replace(context, options=options), excluded=frozenset({"adversarial_regularization"}))
    assert fresh.steer([only_excluded]) == {} and fresh.weights() == {}


BUDGET_RED = """
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_regularization", "flooding")
def test_never_green(record):
    record.at_most("leak", 1.0, 0.0)
"""


@pytest.mark.slow
def test_a_budgeted_run_follows_its_plan_end_to_end(tmp_path: Path) -> None:
    """The tiny project under --budget 3.15: 4 epochs of 256 members (1,024 training rows); a judgement
    feeds 512 rows (the accuracy and entropy tests), 0.3x training each. The fewest judgements (3
    checkpoints, and the one that counts) leave 0.95x to spare: the adversary (1.0x) is left out.
    Then 3 candidates -> 1 and 6 final checks -> 3 fit: 1 + 7 x 0.3 = 3.1x."""
    make_compress_project(tmp_path)
    (tmp_path / "safety_tests" / "test_red.py").write_text(BUDGET_RED)
    run = ("compress", "parent.pt", "--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--updates", "3", "--epochs", "4", "--final-checks", "6", "--budget", "3.15", "-q")
    assert run_in(tmp_path, *run, "--out", "out") == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    budget = report["budget"]
    assert budget["work"]["judged_rows"] == 512 and budget["work"]["train_rows"] == 4 * 8 * 32
    assert budget["changed"] == {"attempts": 1, "candidates": 1, "final_checks": 3} and budget["excluded_remedies"] == ["adversarial_regularization"]
    assert budget["fits"] and budget["predicted"] == pytest.approx(1 + 7 * 512 * INFERENCE_ROW_COST / 1024, abs=1e-4)
    assert len(report["attempts"]) == 1 and len(report["final_checks"]) == 3
    decisions = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert all(d["remedy_weights"].get("adversarial_regularization", 0.0) == 0.0 for d in decisions)
    assert decisions[0]["remedy_weights"]["flooding"] > 0  # the next rung of the ladder steers instead, from step 0
    for update in report["updates"]:  # one candidate: neither probed nor judged
        assert [c["outcomes"] for c in update["candidates"]] == [{}] and update["checkpoint"]["outcomes"]
    assert "budget: 3.15× the work of training alone" in (tmp_path / "out" / "report.md").read_text()
