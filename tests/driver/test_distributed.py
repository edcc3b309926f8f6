"""Data-parallel compression through torchrun (issue 16), on the CPU with gloo.

Unit tests for what a single process sees, then real 2-process runs of a tiny compress launched by
``torchrun`` (a model with batch norm, whose statistics are each rank's own between steps): the
ranks agree on weights and masks at every decision (the loop checks a digest and raises if not;
the log keeps it), candidates are split across ranks, a second identical run logs the same
decisions and weights, a kill followed by ``--resume`` ends where an uninterrupted run ends, and a
resume with another world size is refused.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from safecompress.distributed import Ranks, state_digest
from safecompress.driver.identity import differences, run_identity

BN_CONFTEST = """
import safecompress
import torch
from torch import nn
from safecompress.data import fashion_mnist_embedded
from safecompress.training import TrainRecipe


def bn_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(256, 10),
    )


@safecompress.fixture(scope="session")
def data(seed):
    return fashion_mnist_embedded(members=192, non_members=192, population=192, test=192, seed=seed)


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=4, batch_size=32, lr=1e-3, optimizer="adam")


@safecompress.fixture(scope="session")
def model_factory():
    return bn_cnn
"""

SAFETY_TESTS = """
import safecompress
from safecompress.inference import predict_logits
from safecompress.remedies import entropy


@safecompress.mark.cost("cheap")
@safecompress.mark.performance(metric="accuracy")
def test_accuracy(model, data, device, record):
    logits = predict_logits(model, data.population, device)
    record.at_least("accuracy", float((logits.argmax(1) == data.population.labels).float().mean()), 0.2)


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("adversarial_regularization")
def test_member_entropy(model, data, device, record):
    # never green: the adversary (whose gradients the ranks average) trains throughout
    logits = predict_logits(model, data.members, device)
    record.at_least("member_entropy", float(entropy(logits).mean()), 10.0)
"""

RUN = ("compress", "parent.pt", "--updates", "3", "--candidates", "3", "--epochs", "6", "--attempts", "1", "-q")


def test_a_single_process_is_rank_0_of_1() -> None:
    ranks = Ranks()
    rows = torch.arange(10)
    assert not ranks.distributed and ranks.is_main and all(ranks.owns(i) for i in range(5))
    assert torch.equal(ranks.shard(rows), rows) and ranks.gather(3) == [3] and ranks.from_main("x") == "x" and ranks.any(True)
    assert ranks.main_first(lambda: 7) == 7


def test_candidates_and_rows_are_split_by_rank() -> None:
    second = Ranks(rank=1, world_size=2)
    assert [i for i in range(5) if second.owns(i)] == [1, 3]
    assert second.shard(torch.arange(7)).tolist() == [1, 3, 5] and Ranks(0, 2).shard(torch.arange(7)).tolist() == [0, 2, 4, 6]


def test_the_state_digest_sees_a_weight_and_a_mask() -> None:
    model = torch.nn.Linear(3, 2)
    masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
    before = state_digest(model, masks)
    masks["weight"][0, 0] = False
    after_mask = state_digest(model, masks)
    with torch.no_grad():
        model.weight[0, 0] += 1e-6
    assert len({before, after_mask, state_digest(model, masks)}) == 3


def test_another_world_size_is_another_run(tmp_path: Path) -> None:
    parent = tmp_path / "p.bin"
    parent.write_bytes(b"weights")
    single, double = (run_identity(parent, {}, ["t"], {"members": "a"}, world_size=w) for w in (1, 2))
    assert "world_size" not in single  # single-process checkpoints are unchanged
    assert differences(double, single) == ["the number of processes (2 in the checkpoint, 1 now)"]


def torchrun(project: Path, *args: str, wait: bool = True) -> "subprocess.Popen[str] | subprocess.CompletedProcess[str]":
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "SAFECOMPRESS_CACHE_DIR": str(project / "cache")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "safecompress", *args]
    if not wait:
        return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, text=True)
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)


def logged(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def comparable(value: object) -> object:
    """A decision without its wall-clock fields (``seconds``, ``candidates_seconds``, at any depth)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    (root / "pyproject.toml").write_text('[tool.safecompress]\ntests = ["safety_tests"]\n')
    (root / "conftest.py").write_text(BN_CONFTEST)
    (root / "safety_tests").mkdir()
    (root / "safety_tests" / "test_safety.py").write_text(SAFETY_TESTS)
    spec = importlib.util.spec_from_file_location("ddp_project_conftest", root / "conftest.py")
    project_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(project_conftest)  # type: ignore[union-attr]  # the project's own data and architecture
    from safecompress.training import TrainRecipe, fit

    data = project_conftest.data(0)
    torch.manual_seed(0)
    parent = fit(project_conftest.bn_cnn(), data.members, TrainRecipe(epochs=4, batch_size=32), seed=0, device="cpu")
    torch.save(parent.state_dict(), root / "parent.pt")
    return root


@pytest.fixture(scope="module")
def first(project: Path) -> Path:
    run = torchrun(project, *RUN, "--out", "first")
    finished(run, project / "first")
    return project / "first"


def finished(run: "subprocess.CompletedProcess[str]", out: Path) -> None:
    """The run ended with the gate's verdict (torchrun exits 1 for a failed worker too: the report tells them apart)."""
    assert run.returncode in (0, 1) and (out / "report.json").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((out / "report.json").read_text())["exitstatus"] == run.returncode


@pytest.mark.slow
def test_ranks_agree_at_every_decision_and_split_the_candidates(first: Path) -> None:
    decisions = logged(first)
    assert decisions and all(d["ranks"]["world_size"] == 2 and len(d["ranks"]["state_sha256"]) == 64 for d in decisions)
    updates = [d for d in decisions if d["kind"] == "update"]
    assert len(updates) >= 2 and all(sorted(d["tested_on_rank"].values()) == [0, 0, 1] for d in updates)  # candidates 0, 2 on rank 0; 1 on rank 1
    assert all(set(d["tested_on_rank"]) == {c["name"] for c in d["candidates"]} for d in updates)
    assert all(d["remedy_weights"]["adversarial_regularization"] > 0 for d in decisions)  # its adversary trained on both ranks
    assert all(d["candidates_seconds"] > 0 for d in updates)  # the candidate phase's wall time, ranks in parallel
    report = json.loads((first / "report.json").read_text())
    assert report["processes"] == 2 and "2 processes (torchrun, data-parallel)" in (first / "report.md").read_text()
    assert (first / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_second_identical_run_logs_the_same_decisions_and_weights(project: Path, first: Path) -> None:
    run = torchrun(project, *RUN, "--out", "second")
    finished(run, project / "second")
    assert [comparable(d) for d in logged(first)] == [comparable(d) for d in logged(project / "second")]
    a, b = load_file(str(first / "model.safetensors")), load_file(str(project / "second" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_kill_and_resume_ends_where_an_uninterrupted_run_ends(project: Path, first: Path) -> None:
    process = torchrun(project, *RUN, "--out", "killed", wait=False)
    log = project / "killed" / "decisions.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both ranks
    process.wait()
    run = torchrun(project, *RUN, "--out", "killed", "--resume")
    finished(run, project / "killed")
    a, b = load_file(str(first / "model.safetensors")), load_file(str(project / "killed" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    keep = ("kind", "step", "winner", "remedy_weights", "ranks")
    assert [{k: d.get(k) for k in keep} for d in logged(first)] == [{k: d.get(k) for k in keep} for d in logged(project / "killed")]


@pytest.mark.slow
def test_resuming_with_another_world_size_is_refused(project: Path, first: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "SAFECOMPRESS_CACHE_DIR": str(project / "cache")}
    run = subprocess.run([sys.executable, "-m", "safecompress", *RUN, "--out", "first", "--resume"], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 4 and "the number of processes (2 in the checkpoint, 1 now)" in run.stdout, run.stdout[-2000:]
