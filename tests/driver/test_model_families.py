"""The driver compresses a torchvision CNN and a transformers text classifier unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from safecompress.cli import main

pytestmark = pytest.mark.slow

ACCURACY_TEST = """
import safecompress
from safecompress.inference import accuracy


@safecompress.mark.cost("cheap")
def test_accuracy(model, data, record):
    record.at_least("accuracy", accuracy(model, data.non_members), 0.0)
"""

RESNET_CONFTEST = """
import safecompress
from safecompress.data import fashion_mnist_embedded
from safecompress.models import resnet18_small_input
from safecompress.training import TrainRecipe


@safecompress.fixture(scope="session")
def data(seed):
    return fashion_mnist_embedded(members=64, non_members=64, population=64, test=64, seed=seed)


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: resnet18_small_input(num_classes=10, in_channels=1)


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=6, batch_size=16)  # 24 steps: room for 2 updates 10 steps apart
"""

BERT_CONFTEST = """
import safecompress
from safecompress.data import wordnet_glosses
from safecompress.models import tiny_bert
from safecompress.training import TrainRecipe


@safecompress.fixture(scope="session")
def data(seed):
    return wordnet_glosses(members=128, non_members=128, population=128, test=128, seed=seed, vocab_size=2000)


@safecompress.fixture(scope="session")
def model_factory(data):
    return lambda: tiny_bert(num_classes=data.num_classes, vocab_size=data.extra["vocab_size"])


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=6, batch_size=32)
"""


def compress_project(root: Path, conftest: str, parent) -> dict:
    import torch

    (root / "safety_tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.safecompress]\ntests = ["safety_tests"]\n\n[tool.safecompress.compress]\nupdates = 2\ncandidates = 2\nprobe-steps = 1\n')
    (root / "conftest.py").write_text(conftest)
    (root / "safety_tests" / "test_accuracy.py").write_text(ACCURACY_TEST)
    torch.save(parent.state_dict(), root / "parent.pt")
    previous = Path.cwd()
    os.chdir(root)
    try:
        code = main(["compress", "parent.pt", "--density", "0.1", "--out", "out", "-q"])
    finally:
        os.chdir(previous)
    assert code == 0
    return json.loads((root / "out" / "report.json").read_text())


def test_torchvision_resnet18(tmp_path: Path) -> None:
    from safecompress.models import resnet18_small_input

    report = compress_project(tmp_path, RESNET_CONFTEST, resnet18_small_input(num_classes=10, in_channels=1))
    assert report["models"]["compressed"]["masked_density"] == pytest.approx(0.1, abs=1e-3)
    assert len(report["updates"]) == 2 and all(len(u["candidates"]) == 2 for u in report["updates"])
    assert any(layer["type"] == "Conv2d" for layer in report["layers"])


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").exists(), reason="needs Debian wordnet-base (apt-get install wordnet-base)")
def test_transformers_tiny_bert(tmp_path: Path) -> None:
    from safecompress.data import wordnet_glosses
    from safecompress.models import tiny_bert

    data = wordnet_glosses(members=128, non_members=128, population=128, test=128, seed=0, vocab_size=2000)
    report = compress_project(tmp_path, BERT_CONFTEST, tiny_bert(num_classes=data.num_classes, vocab_size=data.extra["vocab_size"]))
    assert report["models"]["compressed"]["masked_density"] == pytest.approx(0.1, abs=1e-3)
    assert len(report["updates"]) == 2
    assert any("attention" in layer["name"] for layer in report["layers"])
