"""The driver's switches and rules, each on a short real run of the tiny project: final-check ties,
--final-checks 0, --no-remedies, --threshold, a raising test, and per-test outcomes that agree
between the driver's gate, `safecompress test` and the pytest bridge (skipped and xfailed too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from compress_project import QUICK, gate_verdict, make_compress_project, run_in

pytestmark = pytest.mark.slow

CONSTANT = """
import safecompress


@safecompress.mark.cost("cheap")
def test_constant(record):
    record.at_least("accuracy", 0.5, 0.1)
"""

MIXED_OUTCOMES = """
import pytest
import safecompress


@safecompress.mark.cost("cheap")
def test_raises():
    raise RuntimeError("a broken safety test")


@safecompress.mark.skip(reason="not today")
def test_skipped():
    pass


@safecompress.mark.xfail(reason="known leak")
def test_xfailed():
    assert False
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("switches")
    make_compress_project(root)
    return root


def compressed(root: Path, out: str, *args: str) -> dict:
    assert run_in(root, "compress", "parent.pt", "--out", out, *QUICK, *args) == gate_verdict(root / out)
    return json.loads((root / out / "report.json").read_text())


def test_final_check_ties_ship_the_later_checkpoint(tmp_path):
    """Mutation caught: handing ties between final checks to the earlier checkpoint."""
    make_compress_project(tmp_path)
    (tmp_path / "safety_tests" / "test_safety.py").write_text(CONSTANT)
    report = compressed(tmp_path, "out")
    last = max(a["attempt"] for a in report["attempts"])
    checks = [check for check in report["final_checks"] if check["attempt"] == last]
    steps = [check["step"] for check in checks]
    assert len(steps) >= 2 and report["shipped"]["step"] == max(steps) and report["shipped"]["attempt"] == last
    assert all(check["kept"].startswith("kept as the best") for check in checks)


def test_without_final_checks_a_judged_update_checkpoint_ships(project):
    """Every update's model after its segment is judged, so ``--final-checks 0`` still ships a judged model."""
    report = compressed(project, "out-no-checks", "--final-checks", "0")
    assert report["final_checks"] == [] and report["shipped"]["kind"] == "segment"
    assert report["shipped"]["step"] in {u["step"] for u in report["updates"]}


def test_no_remedies_keeps_every_remedy_off(project):
    report = compressed(project, "out-no-remedies", "--no-remedies")
    assert all(update["remedies"] == {} for update in report["updates"])
    assert not any(report["remedy_weights"].values())


def test_a_threshold_on_the_command_line_takes_effect(project):
    def entropy_outcomes(report: dict) -> set[str]:
        return {c["outcomes"]["safety_tests/test_safety.py::test_member_entropy"] for u in report["updates"] for c in u["candidates"]}

    assert entropy_outcomes(compressed(project, "out-default")) == {"passed"}  # entropy_min = 0.9 in pyproject
    assert entropy_outcomes(compressed(project, "out-strict", "--threshold", "entropy_min=5.0")) == {"failed"}


def test_outcomes_agree_between_the_gate_the_cli_and_the_bridge(project):
    (project / "safety_tests" / "test_mixed.py").write_text(MIXED_OUTCOMES)
    try:
        report = compressed(project, "out-mixed")
        assert {c["outcomes"]["safety_tests/test_mixed.py::test_raises"] for u in report["updates"] for c in u["candidates"]} == {"error"}
        gate = {t["nodeid"]: t["outcome"] for t in report["models"]["compressed"]["tests"]}
        assert gate["safety_tests/test_mixed.py::test_skipped"] == "skipped" and gate["safety_tests/test_mixed.py::test_xfailed"] == "xfailed"
        assert run_in(project, "test", "out-mixed/model.safetensors", "-q", "--json", "cli.json") == report["exitstatus"]
        cli = {t["nodeid"]: t["outcome"] for t in json.loads((project / "cli.json").read_text())["tests"]}
        assert cli == gate
        env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rxs", "safety_tests", "--safecompress-model", "out-mixed/model.safetensors", "--junitxml", "bridge.xml"]
        bridged = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert bridged.returncode == report["exitstatus"], bridged.stdout
        bridge = {}
        for case in ET.parse(project / "bridge.xml").getroot().iter("testcase"):
            name = case.get("name")
            skipped = case.find("skipped")
            if case.find("failure") is not None or case.find("error") is not None:
                bridge[name] = "red"
            elif skipped is not None:
                bridge[name] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
            else:
                bridge[name] = "passed"
        expected = {nodeid.split("::")[1]: ("red" if outcome in ("failed", "error") else outcome) for nodeid, outcome in gate.items()}
        assert bridge == expected
    finally:
        (project / "safety_tests" / "test_mixed.py").unlink()
