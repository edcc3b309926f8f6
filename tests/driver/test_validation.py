"""Validation of the point about to ship (issue 28), end to end from a real run's decision log.

A target the in-loop audit always misses stands in for a requirement; a ``validation`` test serving
the same requirement decides instead for the checkpoint about to ship. Confirmed: it ships as
passing and no second attempt runs. Rejected: the next attempt runs, and the gate alone decides the
exit code (a missed target never makes a run red).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compress_project import QUICK, make_compress_project, run_in

pytestmark = pytest.mark.slow

SUITE = """
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.target(serves="test_requirement")
def test_in_loop_proxy(record):
    record.at_most("proxy", 1.0, 0.0)  # the in-loop evidence never meets it


@safecompress.mark.cost("validation")
@safecompress.mark.target(serves="test_requirement")
def test_validated(record, thresholds):
    record.at_most("validated", 0.0, thresholds["validation_limit"])


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_requirement(record):
    record.at_most("gate_value", 0.0, 1.0)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("validation")
    make_compress_project(root)
    for name in (root / "safety_tests").glob("test_*.py"):
        name.unlink()
    (root / "safety_tests" / "test_suite.py").write_text(SUITE)
    return root


def run(project: Path, out: str, limit: float) -> tuple[int, dict, list[dict]]:
    code = run_in(project, "compress", "parent.pt", *QUICK, "--attempts", "2", "--threshold", f"validation_limit={limit}", "--out", out)
    report = json.loads((project / out / "report.json").read_text())
    log = [json.loads(line) for line in (project / out / "decisions.jsonl").read_text().splitlines()]
    return code, report, log


def test_a_confirmed_checkpoint_ships_as_passing_without_a_second_attempt(project: Path) -> None:
    code, report, log = run(project, "confirmed", 0.5)
    validations = [d for d in log if d["kind"] == "validation"]
    assert code == 0 and len(report["attempts"]) == 1 and report["attempts"][0]["passed"]
    assert len(validations) == 1 and validations[0]["passed"] and "confirmed" in validations[0]["kept"]
    assert report["shipped"]["passed"] and report["shipped"]["red_tests"] == []  # the in-loop proxy no longer decides it
    by_test = {t["nodeid"].split("::")[-1]: t for t in report["models"]["compressed"]["tests"]}
    assert by_test["test_validated"]["evidence"] == "validation" and by_test["test_in_loop_proxy"]["outcome"] == "missed"


def test_a_rejected_checkpoint_sends_the_run_to_its_next_attempt_and_the_gate_decides(project: Path) -> None:
    code, report, log = run(project, "rejected", -0.5)
    validations = [d for d in log if d["kind"] == "validation"]
    assert len(report["attempts"]) == 2 and not any(a["passed"] for a in report["attempts"])
    assert validations and all(not d["passed"] and "rejected" in d["kept"] for d in validations)
    assert code == 0  # the requirement passed at the gate: a missed target is not red
