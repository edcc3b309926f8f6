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
    assert len(rollbacks) == 1 and "halved the learning rate (scale 0.5)" in rollbacks[0] and rollbacks[0].startswith("attempt 1: ")
    assert len([u for u in report["updates"] if u["attempt"] == 1]) == 3


NAN_ALWAYS = (
    NAN_ONCE.replace("NanOnce", "NanAlways")
    .replace('"nan_once"', '"nan_always"')
    .replace(
        '        if not NanAlways.fired:\n            NanAlways.fired = True\n            return torch.tensor(float("nan"))\n        return logits.sum() * 0.0',
        '        return torch.tensor(float("nan"))',
    )
)


def test_a_loss_that_stays_nan_stops_after_three_rollbacks_with_one_line(tmp_path: Path, capsys) -> None:
    assert 'return torch.tensor(float("nan"))' in NAN_ALWAYS and "fired = True" not in NAN_ALWAYS
    assert compress_with_plugin_remedy(tmp_path, NAN_ALWAYS, "nan_always") == 4
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "3 rollbacks did not help; lower the learning rate" in errors[0], out
    assert "Traceback" not in out
