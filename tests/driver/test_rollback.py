"""A NaN loss rolls the run back to its last checkpoint with half the learning rate, and says so."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compress_project import make_compress_project

from safecompress.cli import main

pytestmark = pytest.mark.slow

NAN_ONCE = '''

class NanOnce:
    """A remedy whose first loss term is NaN: a fault injected through the public remedy hook."""

    name = "nan_once"
    base_weight = 1.0
    max_weight = 1.0
    fired = False

    def __init__(self, context):
        pass

    def loss(self, model, inputs, logits, labels):
        import torch

        if not NanOnce.fired:
            NanOnce.fired = True
            return torch.tensor(float("nan"))
        return logits.sum() * 0.0

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def safecompress_register_remedies(register):
    register("nan_once", NanOnce)
'''

ALWAYS_RED = '''
import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("nan_once")
def test_red(record):
    record.at_most("always", 1.0, 0.0)
'''


def test_nan_loss_rolls_back_and_halves_the_learning_rate(tmp_path: Path) -> None:

    make_compress_project(tmp_path)
    with (tmp_path / "conftest.py").open("a") as handle:
        handle.write(NAN_ONCE)
    (tmp_path / "safety_tests" / "test_red.py").write_text(ALWAYS_RED)
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        code = main(["compress", "parent.pt", "--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--out", "out", "-q", "--updates", "3", "--epochs", "4"])
    finally:
        os.chdir(previous)
    assert code == 1  # test_red stays red: the gate fails, the run itself completed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rollbacks = [e for e in report["events"] if "rolled back" in e]
    assert len(rollbacks) == 1 and "halved the learning rate (scale 0.5)" in rollbacks[0]
    assert len(report["updates"]) == 3
