"""Requirements decide the exit code; steering targets steer and are reported, never red by themselves."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

TARGET_AND_REQUIREMENT = """
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.target(serves="test_requirement")
def test_target(record):
    record.at_most("proxy_auc", {proxy}, 0.55, policy="point")


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_requirement(record):
    record.at_most("gate_auc", {gate}, 0.60, policy="point")
"""


def write(project, proxy: float, gate: float) -> None:
    project.write("safety_tests/test_roles.py", TARGET_AND_REQUIREMENT.format(proxy=proxy, gate=gate))


def test_a_missed_target_with_met_requirements_exits_0(project, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, proxy=0.58, gate=0.57)
    assert project.run("test", "model.pt", "--json", "r.json", "--junitxml", "r.xml") == 0
    out = capsys.readouterr().out
    assert "missed" in out and "1 target missed" in out.replace("(s)", "")
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads((project.root / "r.json").read_text())["tests"]}
    assert tests["test_target"]["outcome"] == "missed" and tests["test_target"]["role"] == "target" and tests["test_target"]["serves"] == "test_requirement"
    assert tests["test_target"]["evidence"] == "in-loop" and tests["test_requirement"]["evidence"] == "gate"
    assert tests["test_target"]["checks"][0]["margin"] == pytest.approx(-0.03)  # by how much
    case = next(c for c in ET.parse(project.root / "r.xml").getroot().iter("testcase") if c.get("name") == "test_target")
    assert case.find("failure") is None and case.find("error") is None
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["role"] == "target" and properties["target"] == "missed" and properties["proxy_auc.limit"] == "<= 0.55 (point)"


def test_a_met_target_with_a_missed_requirement_exits_1(project) -> None:
    write(project, proxy=0.50, gate=0.65)
    assert project.run("test", "model.pt", "--json", "r.json", "-q") == 1
    tests = {t["nodeid"].split("::")[-1]: t for t in json.loads((project.root / "r.json").read_text())["tests"]}
    assert tests["test_target"]["outcome"] == "passed" and tests["test_requirement"]["outcome"] == "failed"


def test_x_stops_at_a_failed_requirement_not_at_a_missed_target(project) -> None:
    write(project, proxy=0.58, gate=0.57)
    assert project.run("test", "model.pt", "-x", "--json", "r.json", "-q") == 0
    assert len(json.loads((project.root / "r.json").read_text())["tests"]) == 2  # -x did not stop at the missed target


def test_a_test_cannot_be_both(project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(
        "safety_tests/test_both.py",
        "import safecompress\n\n\n@safecompress.mark.target\n@safecompress.mark.requirement\ndef test_both():\n    pass\n",
    )
    assert project.run("test", "model.pt", "-q") == 2
    assert "both" in capsys.readouterr().out


def test_a_cheap_test_without_a_role_gates_and_gets_a_one_line_note(project, capsys: pytest.CaptureFixture[str]) -> None:
    """Existing suites keep working: an unmarked cheap test is a requirement, as before, and the run
    says once that its role is ambiguous."""
    project.write("safety_tests/test_old.py", "import safecompress\n\n\n@safecompress.mark.cost('cheap')\ndef test_old(record):\n    record.at_most('x', 0.7, 0.5)\n")
    assert project.run("test", "model.pt", "--json", "r.json") == 1
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert out.count("declares no role") == 1 and "mark.target(serves=...)" in out
    test = json.loads((project.root / "r.json").read_text())["tests"][0]
    assert test["outcome"] == "failed" and test["role"] == "requirement"


def test_target_serves_must_name_a_test() -> None:
    import safecompress

    with pytest.raises(ValueError, match="test name"):
        safecompress.mark.target(serves=3)
