"""A tiny real compression project: Fashion-MNIST (embedded subset), a trained SmallCNN parent."""

from __future__ import annotations

from pathlib import Path

PROJECT_CONFTEST = """
import safecompress
from safecompress.data import fashion_mnist_embedded
from safecompress.training import TrainRecipe


@safecompress.fixture(scope="session")
def data(seed):
    return fashion_mnist_embedded(members=256, non_members=256, population=256, test=256, seed=seed)


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=16, batch_size=32, lr=1e-3, optimizer="adam")
"""

SAFETY_TESTS = '''
import safecompress
import torch
from safecompress.inference import predict_logits
from safecompress.remedies import entropy


@safecompress.mark.cost("cheap")
def test_accuracy(model, data, device, record):
    logits = predict_logits(model, data.non_members, device)
    record.at_least("accuracy", float((logits.argmax(1) == data.non_members.labels).float().mean()), 0.3)


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("confidence_penalty", beta=0.2, max_weight=3.2)
def test_member_entropy(model, data, device, record, thresholds):
    """Mean predictive entropy on members: low entropy is over-confidence on training data."""
    logits = predict_logits(model, data.members, device)
    record.at_least("member_entropy", float(entropy(logits).mean()), thresholds["entropy_min"])
'''


# A short run of the tiny project: a few seconds on two CPU cores.
QUICK = ("--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--updates", "3", "--epochs", "3", "-q")


def run_in(root: Path, *args: str) -> int:
    """``safecompress ARGS`` run in-process from ``root``; returns the exit code."""
    import os

    from safecompress.cli import main

    previous = Path.cwd()
    os.chdir(root)
    try:
        return main(list(args))
    finally:
        os.chdir(previous)


def gate_verdict(out: Path) -> int:
    """The exit code a finished run in ``out`` must have had: 1 when a test of the compressed
    model is red at the gate, else 0 (what a bare ``in (0, 1)`` would not check)."""
    import json

    tests = json.loads((out / "report.json").read_text())["models"]["compressed"]["tests"]
    return 1 if any(t["outcome"] in ("failed", "error") for t in tests) else 0


def make_compress_project(root: Path, entropy_min: float = 0.9) -> Path:
    """Write the project and a trained parent; return the parent's path."""
    import torch

    from safecompress.data import fashion_mnist_embedded
    from safecompress.modelio import save_model
    from safecompress.models import small_cnn
    from safecompress.training import TrainRecipe, fit

    (root / "safety_tests").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.safecompress]\ntests = ["safety_tests"]\n\n[tool.safecompress.compress]\nupdates = 8\ncandidates = 3\nprobe-steps = 2\n\n[tool.safecompress.thresholds]\nentropy_min = {entropy_min}\n'
    )
    (root / "conftest.py").write_text(PROJECT_CONFTEST)
    (root / "safety_tests" / "test_safety.py").write_text(SAFETY_TESTS)
    data = fashion_mnist_embedded(members=256, non_members=256, population=256, test=256, seed=0)
    torch.manual_seed(0)
    parent = fit(small_cnn(10), data.members, TrainRecipe(epochs=8, batch_size=64), seed=0, device="cpu")
    return save_model(parent, root / "parent.pt")


ALWAYS_RED = """
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("{remedy}")
def test_red(record):
    record.at_most("always", 1.0, 0.0)
"""


def compress_with_plugin_remedy(root: Path, plugin_source: str, remedy: str) -> int:
    """The tiny project plus a conftest-registered remedy (``plugin_source``) that an always-red test
    declares; a short compress run (3 updates, 4 epochs) into ``root/out``. Returns the exit code."""
    make_compress_project(root)
    with (root / "conftest.py").open("a") as handle:
        handle.write(plugin_source)
    (root / "safety_tests" / "test_red.py").write_text(ALWAYS_RED.format(remedy=remedy))
    return run_in(root, "compress", "parent.pt", "--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--out", "out", "-q", "--updates", "3", "--epochs", "4")
