"""End-to-end: `safecompress compress` on tiny real data, checked from its own decision log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from compress_project import gate_verdict, run_in

pytestmark = pytest.mark.slow

ARCH = ("--arch", "safecompress.models:small_cnn", "--num-classes", "10")


@pytest.fixture(scope="module")
def compressed(compress_project: Path) -> Path:
    code = run_in(compress_project, "compress", "parent.pt", *ARCH, "--density", "0.1", "--out", "out", "-q")
    assert code == gate_verdict(compress_project / "out")
    return compress_project / "out"


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def decisions(out: Path) -> list[dict]:
    return [d for d in logged(out) if d["kind"] == "update"]


def test_every_update_tests_n_candidates_and_keeps_the_best(compressed: Path) -> None:
    log = decisions(compressed)
    assert len(log) == 8
    for update in log:
        assert len(update["candidates"]) == 3
        assert all(set(c["outcomes"]) == {"safety_tests/test_safety.py::test_accuracy", "safety_tests/test_safety.py::test_member_entropy"} for c in update["candidates"])
        best = min(update["candidates"], key=lambda c: (c["failures"], -c["score"]))
        assert update["winner"] == best["name"]
        # the score is what the rule says it is: accuracy − λ·risk
        for c in update["candidates"]:
            assert c["score"] == pytest.approx(c["utility"] - update["lambda"] * c["risk"])


def test_the_best_final_phase_checkpoint_ships(compressed: Path) -> None:
    """After the last update the cheap tests run at 6 steps of the final phase; the default rule keeps
    the best (ties: the later), and the shipped model is that checkpoint: the gate's cheap tests on the
    saved model measure exactly what the loop measured there."""
    log = logged(compressed)
    checks = [d for d in log if d["kind"] == "final-check"]
    assert [d["kind"] for d in log] == ["update"] * 8 + ["final-check"] * 6
    steps = [c["step"] for c in checks]
    assert steps == sorted(steps) and steps[0] > log[7]["step"] and steps[-1] == 8 * 16  # 256 members / 32 per batch × 16 epochs
    best = None
    for check in checks:
        tested = check["candidates"][0]
        if best is None or (tested["failures"], -tested["score"]) <= (best["failures"], -best["score"]):
            best = tested
        assert check["kept"] == best["name"]
    report = json.loads((compressed / "report.json").read_text())
    assert f"step {report['shipped_step']}" == best["name"]
    gate = {t["nodeid"]: t["metrics"] for t in report["models"]["compressed"]["tests"]}
    assert gate["safety_tests/test_safety.py::test_accuracy"]["accuracy"] == pytest.approx(best["metrics"]["accuracy"], abs=1e-9)
    assert gate["safety_tests/test_safety.py::test_member_entropy"]["member_entropy"] == pytest.approx(best["metrics"]["member_entropy"], abs=1e-6)
    assert "## Final phase" in (compressed / "report.md").read_text()


def test_remedy_rises_while_red_and_falls_after_green(compressed: Path) -> None:
    """Member entropy falls as the model overfits; the red entropy test switches the confidence
    penalty on, doubles it while red, and halves it once the penalty has made the test green."""
    trace = [(u["remedies"]["confidence_penalty"]["red"], u["remedies"]["confidence_penalty"]["weight"]) for u in decisions(compressed)]
    first_red = next((i for i, (red, _) in enumerate(trace) if red), None)
    assert first_red is not None, f"the entropy test never went red: {trace}"
    assert trace[first_red][1] == pytest.approx(0.2), trace  # switched on at its base weight
    assert all(weight == 0.0 for _, weight in trace[:first_red]), trace
    run_end = next((i for i in range(first_red, len(trace)) if not trace[i][0]), None)
    assert run_end is not None, f"the remedy never turned the test green: {trace}"
    red_weights = [weight for _, weight in trace[first_red:run_end]]
    assert len(red_weights) >= 2 and all(b == pytest.approx(min(2 * a, 3.2)) for a, b in zip(red_weights, red_weights[1:])), trace
    assert trace[run_end][1] == pytest.approx(red_weights[-1] / 2), trace  # halved once green


def test_outputs_and_report(compressed: Path) -> None:
    for name in ("model.safetensors", "model_dense_export.pt", "report.json", "report.md", "report.html", "decisions.jsonl", "checkpoint.pt"):
        assert (compressed / name).is_file(), name
    report = json.loads((compressed / "report.json").read_text())
    assert report["models"]["compressed"]["density"] == pytest.approx(0.1, abs=1e-3)
    roles = report["data"]["roles"]
    assert roles["members"]["count"] == 256 and len(roles["members"]["indices"]) == 256
    assert len(roles["non_members"]["sha256"]) == 64
    assert report["versions"]["torch"] and report["settings"]["seed"] == 0
    assert 0.0 <= report["timings"]["overhead_fraction"] <= 1.0
    assert {row["metric"] for row in report["comparison"]} >= {"accuracy", "member_entropy", "test_accuracy"}
    assert "<svg" in (compressed / "report.html").read_text()


def test_gate_cli_and_pytest_bridge_agree_with_the_driver(compressed: Path, compress_project: Path) -> None:
    import subprocess
    import sys

    report = json.loads((compressed / "report.json").read_text())
    driver = {t["nodeid"]: t["outcome"] for t in report["models"]["compressed"]["tests"]}
    assert run_in(compress_project, "test", "out/model.safetensors", "-q", "--json", "gate.json") == report["exitstatus"]
    gate = {t["nodeid"]: t["outcome"] for t in json.loads((compress_project / "gate.json").read_text())["tests"]}
    assert gate == driver
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    bridged = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "safety_tests", "--safecompress-model", "out/model.safetensors"],
        cwd=compress_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bridged.returncode == report["exitstatus"], bridged.stdout


def test_resume_after_kill_is_bit_identical(compress_project: Path, compressed: Path) -> None:
    """Kill the run at a random point after its first checkpointed update, resume, compare weights."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    args = [sys.executable, "-m", "safecompress", "compress", "parent.pt", *ARCH, "--density", "0.1", "--out", "killed", "-q"]
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen(args, cwd=compress_project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = compress_project / "killed" / "decisions.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (compress_project / "killed" / "report.json").exists()
    assert run_in(compress_project, "compress", "parent.pt", *ARCH, "--density", "0.1", "--out", "killed", "-q", "--resume") == gate_verdict(compress_project / "killed")
    straight = load_file(str(compressed / "model.safetensors"))
    resumed = load_file(str(compress_project / "killed" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    assert all(bool((straight[k] == resumed[k]).all()) for k in straight)

    def without_timings(log: list[dict]) -> list[dict]:
        return [dict(d, seconds=0, candidates=[dict(c, seconds=0) for c in d["candidates"]]) for d in log]

    assert without_timings(logged(compressed)) == without_timings(logged(compress_project / "killed"))
