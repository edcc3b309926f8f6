"""The in-loop → gate prediction summary (issue 28, item 2) on hand-made checkpoints."""

from __future__ import annotations

import pytest

from safecompress.bench.prediction import judged, prediction_summary, render_prediction


def checkpoint(loop_auc: float, target: str, gate_auc: float, requirement: str) -> dict:
    return {
        "label": "final phase: step 10",
        "tests": {
            "test_rmia_in_loop": {"outcome": target, "metrics": {"rmia1_auc": loop_auc}},
            "test_rmia_gate": {"outcome": requirement, "metrics": {"rmia_auc": gate_auc}},
        },
    }


def test_rank_correlation_and_pass_rates() -> None:
    run_a = {"checkpoint_gates": [checkpoint(0.60, "missed", 0.70, "failed"), checkpoint(0.57, "passed", 0.66, "passed"), checkpoint(0.55, "passed", 0.65, "passed")]}
    run_b = {"checkpoint_gates": [checkpoint(0.55, "passed", 0.70, "failed"), checkpoint(0.60, "missed", 0.60, "passed"), checkpoint(0.58, "missed", 0.65, "failed")]}
    row = prediction_summary([run_a, run_b])["test_rmia_in_loop"]
    assert row["spearman_per_run"] == pytest.approx([1.0, -1.0]) and row["spearman_mean"] == pytest.approx(0.0)
    assert (row["requirement_passed_when_met"], row["target_met"]) == (2, 3)
    assert (row["requirement_passed_when_missed"], row["target_missed"]) == (1, 3)
    assert "| `test_rmia_in_loop` | `test_rmia_gate` | +0.00 (n = 2) | 2/3 | 1/3 |" in render_prediction(prediction_summary([run_a, run_b]))


def test_a_run_without_gated_checkpoints_counts_nothing() -> None:
    row = prediction_summary([{"arm": "plain-dst"}])["test_accuracy"]
    assert row["spearman_mean"] is None and row["target_met"] == 0 and row["target_missed"] == 0


def test_only_judged_checkpoints_are_gated() -> None:
    assert judged("update 3: the model after its retraining segment") and judged("final phase: step 420")
    assert not judged("update 3: random growth (seed 1)")
