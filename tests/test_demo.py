"""`safecompress demo`, the README's main command, runs end to end and exits 0 (short epochs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safecompress.cli import main

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_demo_runs_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "3", "--rootdir", str(REPOSITORY), "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"model.safetensors", "report.md", "report.html", "decisions.jsonl", "dense_parent.pt"} <= {p.name for p in out.iterdir()}
    assert report["models"]["compressed"]["masked_density"] == pytest.approx(0.1, abs=1e-3)
    from safecompress.driver.loop import fitting_updates

    first_attempt = [u for u in report["updates"] if u["attempt"] == 1]
    assert len(first_attempt) == fitting_updates(report["settings"]["updates"], 3 * 8) == 2 and report["models"]["dense"]["tests"]  # 1,000 members / 128 per batch × 3 epochs
    assert "update 1/2 step" in capsys.readouterr().out  # progress counts the updates that fit, not the 8 asked for


def test_the_demo_runs_outside_a_project_with_the_library_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """After `pip install`, in any folder: no safety_tests/ there, so the demo runs the library's
    suite with its packaged settings, says so, and its report draws every recorded attack's ROC."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "running the library's shipped suite" in out
    report = json.loads((tmp_path / "safecompress-demo" / "report.json").read_text())
    nodeids = {t["nodeid"] for t in report["models"]["compressed"]["tests"]}
    assert {"test_membership.py::test_rmia_gate", "test_accuracy.py::test_held_out_accuracy"} <= nodeids and len(nodeids) == 7
    assert report["settings"]["density"] == 0.1 and report["data"]["roles"]["members"]["count"] == 1000  # the packaged settings
    html = (tmp_path / "safecompress-demo" / "report.html").read_text()
    recorded = {name for t in report["models"]["compressed"]["tests"] for name in t["info"].get("rocs", {})}
    assert {"loss", "rmia"} <= recorded and all(f"ROC — {name}" in html for name in recorded)


def test_the_demo_refuses_a_rootdir_without_safety_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rootdir", str(tmp_path), "--out", str(tmp_path / "out")]) == 4
    assert "no safety_tests/ under --rootdir" in capsys.readouterr().out
