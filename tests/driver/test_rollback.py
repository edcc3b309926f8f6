"""A NaN loss rolls the run back to its last checkpoint with half the learning rate, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compress_project import compress_with_plugin_remedy

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


def test_nan_loss_rolls_back_and_halves_the_learning_rate(tmp_path: Path) -> None:
    code = compress_with_plugin_remedy(tmp_path, NAN_ONCE, "nan_once")
    assert code == 1  # test_red stays red: the gate fails, the run itself completed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rollbacks = [e for e in report["events"] if "rolled back" in e]
    assert len(rollbacks) == 1 and "halved the learning rate (scale 0.5)" in rollbacks[0]
    assert len(report["updates"]) == 3
