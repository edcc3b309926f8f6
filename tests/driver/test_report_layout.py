"""What a person reads (issue 15): every attack a test records with ``record.attack`` is drawn as a
ROC; a comparison row carries an outcome only when a check judged its metric; the terminal table
fits an 80-column terminal or CI log."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from safecompress.attacks.data_structures import AttackResults
from safecompress.commands.compress import comparison_table
from safecompress.driver.gate import GateRun, compare
from safecompress.driver.report import comparison_rows, judged_charts, roc_charts
from safecompress.runner.record import Record
from safecompress.runner.reports import TestReport


def attack(seed: int, shift: float) -> AttackResults:
    """Scores of 400 members and 400 non-members, members shifted up by ``shift``."""
    rng = np.random.default_rng(seed)
    membership = np.repeat([1, 0], 400)
    return AttackResults.from_scores("loss", rng.normal(size=800) + shift * membership, membership)


def test_record_attack_keeps_auc_check_tpr_summary_and_a_thinned_roc() -> None:
    record = Record()
    results = attack(0, 1.0)
    passed = record.attack("loss", results, 0.6)
    assert not passed  # AUC ≈ 0.76, its whole interval above 0.6
    [check] = record.checks
    assert check.name == "loss_auc" and check.interval == (results.auc.low, results.auc.high) and check.policy == "lenient"
    assert record.metrics["loss_tpr_at_1pct_fpr"] == results.tpr_at(0.01).tpr.value
    assert record.info["loss"] == results.summary()
    roc = record.info["rocs"]["loss"]
    assert 100 <= len(roc["fpr"]) <= 401 and roc["fpr"][0] == 0.0 and len(roc["fpr"]) == len(roc["tpr"])
    record.attack("rmia1", attack(1, 0.2), 0.6, policy="point")
    assert set(record.info["rocs"]) == {"loss", "rmia1"} and record.checks[-1].policy == "point"


def gate_run(record: Record, outcome: str) -> GateRun:
    report = TestReport("safety_tests/test_m.py::test_attacks", outcome, metrics=dict(record.metrics), checks=list(record.checks), info=dict(record.info))
    return GateRun(label=outcome, reports=[report], test_accuracy={"value": 0.8, "low": 0.78, "high": 0.82}, densities={})


def two_models() -> tuple[GateRun, GateRun]:
    dense, compressed = Record(), Record()
    for record, shift in ((dense, 1.0), (compressed, 0.1)):
        record.attack("loss", attack(2, shift), 0.6)
        record.attack("rmia1", attack(3, shift), 0.7)
        record.metric("dense_loss_auc", 0.76)
    return gate_run(compressed, "passed"), gate_run(dense, "failed")


def report_of(compressed: GateRun, dense: GateRun) -> dict:
    return {
        "comparison": compare(compressed, dense),
        "models": {
            "dense": {"tests": [r.to_dict() for r in dense.reports], "maskable_density": 1.0, "whole_model_density": 1.0},
            "compressed": {"tests": [r.to_dict() for r in compressed.reports], "maskable_density": 0.1, "whole_model_density": 0.1005, "maskable_share": 0.9994},
        },
    }


def test_every_recorded_attack_gets_a_roc_chart() -> None:
    charts = roc_charts(report_of(*two_models()))
    assert charts.count("<svg") == 2 and "ROC — loss" in charts and "ROC — rmia1" in charts


def test_outcomes_only_on_rows_a_check_judged() -> None:
    rows = {row[0]: row for row in comparison_rows(report_of(*two_models()))}
    assert rows["loss_auc (in-loop)"][5] == "failed → passed"  # the check's own verdict on each model
    assert rows["rmia1_auc (in-loop)"][5] == "failed → passed"
    assert rows["loss_auc (in-loop)"][1] == "requirement <= 0.6 (lenient)"  # its role and limit
    for metric in ("loss_tpr_at_1pct_fpr (in-loop)", "dense_loss_auc (in-loop)", "test_accuracy (gate)"):
        assert rows[metric][5] == "" and rows[metric][1] == "", metric


def test_the_terminal_table_fits_80_columns_and_keeps_every_number() -> None:
    report = report_of(*two_models())
    for width in (80, 160):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(comparison_table(report, width))
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        text = out.getvalue()
        for row in report["comparison"]:
            assert f"{row['compressed']:.4g}" in text and f"{row['delta']:+.4f}" in text
    narrow = io.StringIO()
    Console(file=narrow, width=80, color_system=None).print(comparison_table(report, 80))
    assert "FAIL → ok" in narrow.getvalue()


def test_the_judged_checkpoints_chart_marks_passing_and_shipped_ones() -> None:
    judged = [
        {"attempt": 1, "step": 10, "passed": False, "utility": 0.80, "risk": 0.05},
        {"attempt": 1, "step": 20, "passed": True, "utility": 0.81, "risk": 0.0},
        {"attempt": 2, "step": 10, "passed": False, "utility": 0.79, "risk": 0.02},
    ]
    charts = judged_charts({"judged": judged, "shipped": {"attempt": 1, "step": 20}})
    assert charts.count("<svg") == 2
    assert ">attempt 1<" in charts and ">attempt 2<" in charts
    assert charts.count('r="5" fill="#000000"') == 1 and charts.count("<circle cx") == 4  # the shipped dot among the three judged, drawn again
    assert judged_charts({"judged": [], "shipped": None}) == ""
