"""Attempts and the remedy ladder end to end (issue 13), from the decision log of a real run.

A test that can never pass declares the ladder label_smoothing (capped at once) > flooding:
the parent is red, so the first rung is on from step 0; it sits at its cap without moving the
margin, so flooding takes over; nothing passes, so a second attempt starts from what the first
learned (flooding from step 0, at the weight it reached); the report explains the red result; and a
run killed in its second attempt resumes to the same weights as one never killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compress_project import make_compress_project, run_in

pytestmark = pytest.mark.slow

LADDER_RED = """
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy(("label_smoothing", {"epsilon": 0.05, "max_weight": 0.1}), ("flooding", {"level": 0.3}))
def test_never_green(record):
    record.at_most("leak", 1.0, 0.0)
"""
RUN = ("compress", "parent.pt", "--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--updates", "3", "--epochs", "4", "--attempts", "2", "-q")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("attempts")
    make_compress_project(root)
    (root / "safety_tests" / "test_red.py").write_text(LADDER_RED)
    return root


@pytest.fixture(scope="module")
def finished(project: Path) -> Path:
    assert run_in(project, *RUN, "--out", "out") == 1
    return project / "out"


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def test_red_parent_turns_the_first_rung_on_at_step_zero(finished: Path) -> None:
    baseline = logged(finished)[0]
    assert baseline["kind"] == "baseline" and baseline["step"] == 0 and baseline["attempt"] == 1
    assert baseline["remedies"]["label_smoothing"]["weight"] == pytest.approx(0.05)
    assert baseline["remedy_weights"]["flooding"] == 0.0


def test_the_ladder_hands_over_when_the_first_rung_stalls_at_its_cap(finished: Path) -> None:
    first = [d for d in logged(finished) if d["attempt"] == 1]
    handed = next(i for i, d in enumerate(first) if "handed over to flooding" in d["remedies"]["label_smoothing"]["why"])
    cap_reached = next(i for i, d in enumerate(first) if d["remedies"]["label_smoothing"]["weight"] == pytest.approx(0.1))
    assert handed == cap_reached + 1  # at its cap for one decision, margin unmoved over two: stalled
    assert first[handed]["remedy_weights"] == {"confidence_penalty": first[handed]["remedy_weights"]["confidence_penalty"], "label_smoothing": 0.0, "flooding": 0.25}
    assert all(d["remedies"]["flooding"]["active"] for d in first[handed:])


def test_a_second_attempt_starts_with_what_the_first_learned(finished: Path) -> None:
    log = logged(finished)
    second = [d for d in log if d["attempt"] == 2]
    assert second[0]["kind"] == "baseline" and second[0]["plan"]["weights"]["flooding"] == pytest.approx(1.0)
    assert "label_smoothing" not in second[0]["plan"]["weights"]  # the stalled rung is not restarted
    assert second[0]["remedy_weights"]["label_smoothing"] == 0.0 and second[0]["remedy_weights"]["flooding"] == pytest.approx(1.0)
    report = json.loads((finished / "report.json").read_text())
    assert [a["attempt"] for a in report["attempts"]] == [1, 2] and not any(a["passed"] for a in report["attempts"])
    assert report["shipped"] is not None and not report["shipped"]["passed"]
    diagnosis = report["diagnosis"]["red_tests"]
    assert [t["nodeid"] for t in diagnosis] == ["safety_tests/test_red.py::test_never_green"]
    tried = {r["remedy"]: r for r in diagnosis[0]["remedies"]}
    assert tried["label_smoothing"]["stalled"] and tried["flooding"]["max_weight"] == pytest.approx(1.0)
    assert "## Why it is red" in (finished / "report.md").read_text() and "## Attempts" in (finished / "report.md").read_text()


def test_a_kill_in_the_second_attempt_resumes_bit_identically(project: Path, finished: Path) -> None:
    from safetensors.torch import load_file

    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen([sys.executable, "-m", "safecompress", *RUN, "--out", "killed"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = project / "killed" / "decisions.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if log.exists() and sum('"attempt": 2' in line for line in log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run_in(project, *RUN, "--out", "killed", "--resume") == 1
    straight, resumed = load_file(str(finished / "model.safetensors")), load_file(str(project / "killed" / "model.safetensors"))
    assert straight.keys() == resumed.keys() and all(bool((straight[k] == resumed[k]).all()) for k in straight)
    keep = ("kind", "attempt", "step", "remedy_weights", "kept")
    assert [{k: d.get(k) for k in keep} for d in logged(finished)] == [{k: d.get(k) for k in keep} for d in logged(project / "killed")]
