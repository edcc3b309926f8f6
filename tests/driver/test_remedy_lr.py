"""A remedy may slow the learning rate while it is on (optional ``lr_scale``): the driver applies it
after steering, logs it and checkpoints it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from compress_project import compress_with_plugin_remedy

from safecompress.data.splits import Split
from safecompress.driver.checkpoint import read_checkpoint
from safecompress.remedies import AdversarialRegularization, RemedyContext

pytestmark = pytest.mark.slow

SLOW_DOWN = '''

class SlowDown:
    """A remedy with no loss term that asks for a quarter of the learning rate per unit of weight."""

    name = "slow_down"
    base_weight = 1.0
    max_weight = 2.0

    def __init__(self, context):
        pass

    def loss(self, model, inputs, logits, labels):
        return logits.sum() * 0.0

    def lr_scale(self, weight):
        return 0.25 ** weight

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def safecompress_register_remedies(register):
    register("slow_down", SlowDown)
'''


def test_remedy_learning_rate_factor_is_applied_logged_and_checkpointed(tmp_path: Path) -> None:
    code = compress_with_plugin_remedy(tmp_path, SLOW_DOWN, "slow_down")
    assert code == 1  # always red: the gate fails, the run itself completed
    logged = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines() if json.loads(line)["attempt"] == 1]
    decisions = [d for d in logged if d["kind"] in ("baseline", "update")]
    # red on the parent: weight 1 from step 0, then 2 (cap) at every update; learning rate × 0.25^weight
    assert [d["kind"] for d in decisions] == ["baseline", "update", "update", "update"]
    assert [d["remedy_weights"]["slow_down"] for d in decisions] == [1.0, 2.0, 2.0, 2.0]
    assert [d["lr_factor"] for d in decisions] == pytest.approx([0.25, 0.0625, 0.0625, 0.0625])
    # still red through the final phase: steering stays at the cap there
    checks = [d for d in logged if d["kind"] == "final-check"]
    assert [d["step"] for d in checks] == [28, 29, 30, 31, 32]  # 5 steps after the last update (27): one check each
    assert all(d["remedy_weights"]["slow_down"] == 2.0 and d["lr_factor"] == pytest.approx(0.0625) for d in checks)
    checkpoint = read_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.0625)


def test_adversarial_regularisation_slows_the_classifier_while_on() -> None:
    reference = Split(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), np.arange(4))
    remedy = AdversarialRegularization(RemedyContext(num_classes=10, device=torch.device("cpu"), reference=reference))
    assert remedy.lr_scale(0.1) == pytest.approx(1 / 1.4) and remedy.lr_scale(1.6) == pytest.approx(1 / 7.4)
