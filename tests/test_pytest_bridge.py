"""The pytest plugin: same verdicts as `safecompress test`, and inert unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TESTS = """
import safecompress

def test_small(model, record):
    record.at_most("weight_norm", float(model.weight.norm()), 100.0)

@safecompress.mark.cost("gate")
def test_large(model, record):
    assert float(model.bias.sum()) >= 1000.0

def test_missing_fixture(nope):
    pass
"""


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_bridge_gives_the_same_verdicts_as_the_cli(project) -> None:
    project.write("safety_tests/test_b.py", TESTS)
    cli_code = project.run("test", "model.pt", "-q", "--json", "cli.json")
    result = run_pytest(project.root, "safety_tests", "--safecompress-model", "model.pt", "--junitxml", "py.xml", "-q")
    assert cli_code == 1 and result.returncode == 1, result.stdout + result.stderr
    import json

    cli = {t["nodeid"].split("::")[1]: t["outcome"] for t in json.loads((project.root / "cli.json").read_text())["tests"]}
    cases = ET.parse(project.root / "py.xml").getroot().iter("testcase")
    bridged = {}
    for case in cases:
        bridged[case.get("name")] = "failed" if case.find("failure") is not None else ("error" if case.find("error") is not None else "passed")
        if case.get("name") == "test_small":
            props = {p.get("name") for p in case.iter("property")}
            assert {"weight_norm", "weight_norm.margin"} <= props
    assert {k: ("red" if v in ("failed", "error") else v) for k, v in cli.items()} == {k: ("red" if v in ("failed", "error") else v) for k, v in bridged.items()}
    assert "fixture 'nope' not found" in result.stdout

    selected = run_pytest(project.root, "safety_tests", "--safecompress-model", "model.pt", "-q", "-k", "small")
    assert selected.returncode == 0, selected.stdout
    by_mark = run_pytest(project.root, "safety_tests", "--safecompress-model", "model.pt", "-q", "-m", "gate")
    assert by_mark.returncode == 1 and "1 failed" in by_mark.stdout


def test_bridge_bad_model_is_usage_error(project) -> None:
    project.write("safety_tests/test_b.py", TESTS)
    result = run_pytest(project.root, "safety_tests", "--safecompress-model", "missing.pt", "-q")
    assert result.returncode == 4
    assert "missing.pt" in result.stdout + result.stderr


def test_plain_pytest_elsewhere_imports_no_torch(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_no_torch(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.hasplugin('safecompress')\n"
        "    assert 'torch' not in sys.modules\n"
        "    assert 'safecompress.runner.session' not in sys.modules\n"
    )
    result = run_pytest(tmp_path, "-q", "test_plain.py")
    assert result.returncode == 0, result.stdout + result.stderr
