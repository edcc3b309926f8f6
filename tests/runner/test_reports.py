"""The issue's acceptance run: one passing and one failing test, JUnit XML with properties, JSON with margins."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import datetime

from safecompress.runner.reports import REPORT_SCHEMA, TestReport

PASS_AND_FAIL = """
def test_weights_small(model, record):
    record.at_most("weight_norm", float(model.weight.detach().norm()), 100.0)

def test_bias_large(model, record):
    record.at_least("bias_sum", float(model.bias.detach().sum()), 1000.0)
"""


def test_json_junit_markdown(project, capsys) -> None:
    project.write("safety_tests/test_x.py", PASS_AND_FAIL)
    code = project.run("test", "model.pt", "--junitxml", "out/r.xml", "--json", "out/r.json", "--report-md", "out/r.md")
    out = capsys.readouterr().out
    assert code == 1
    assert "PASSED   safety_tests/test_x.py::test_weights_small" in out and "weight_norm=" in out
    assert "FAILED   safety_tests/test_x.py::test_bias_large" in out and "bias_sum=" in out
    assert "1 failed, 1 passed in" in out

    report = json.loads((project.root / "out/r.json").read_text())
    assert report["schema"] == REPORT_SCHEMA and report["schema_version"] == 3
    assert report["exitstatus"] == 1 and report["summary"]["passed"] == 1 and report["summary"]["failed"] == 1
    tests = {t["nodeid"]: t for t in report["tests"]}
    passing = tests["safety_tests/test_x.py::test_weights_small"]
    failing = tests["safety_tests/test_x.py::test_bias_large"]
    assert passing["outcome"] == "passed" and passing["margin"] > 0
    assert failing["outcome"] == "failed" and failing["margin"] < -900
    assert failing["checks"][0]["op"] == ">=" and failing["checks"][0]["limit"] == 1000.0
    assert report["model"]["label"] == "model.pt"
    assert TestReport.from_dict(failing).to_dict() == failing  # reports round-trip

    suite = ET.parse(project.root / "out/r.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    started = datetime.fromisoformat(suite.get("timestamp"))  # ISO-8601 with its offset, as pytest writes it
    assert started.tzinfo is not None and abs(started.timestamp() - time.time()) < 3600
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_bias_large"].find("properties")}
    assert "bias_sum" in props and float(props["bias_sum.margin"]) < 0
    assert cases["test_bias_large"].find("failure") is not None
    assert cases["test_weights_small"].find("failure") is None

    markdown = (project.root / "out/r.md").read_text()
    assert "| ❌ | `safety_tests/test_x.py::test_bias_large` | failed |" in markdown
    assert "1 failed, 1 passed" in markdown


def test_unknown_report_format_is_usage_error(project) -> None:
    project.write("safety_tests/test_x.py", PASS_AND_FAIL)
    assert project.run("test", "model.pt", "-q", "--report", "yaml=r.yaml") == 4
