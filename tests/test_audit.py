"""`safecompress audit`: one attack, its metrics with intervals, JSON out, usage errors."""

from __future__ import annotations

import json

FACTORY = """
import safecompress
import torch


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
"""


def test_audit_loss_attack_on_digits(project, capsys) -> None:
    import torch

    from safecompress.data import digits
    from safecompress.training import TrainRecipe, fit

    project.write("pyproject.toml", '[tool.safecompress]\ndata = "digits"\n')
    project.write("conftest.py", FACTORY)
    data = digits(seed=0)
    torch.manual_seed(0)
    model = fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), data.members, TrainRecipe(epochs=30, batch_size=32), seed=0, device="cpu")
    torch.save(model.state_dict(), project.root / "digits.pt")
    assert project.run("audit", "digits.pt", "--attack", "loss", "--json", "audit.json") == 0
    out = capsys.readouterr().out
    assert "loss (tier 0): AUC" in out and "TPR@1.0% FPR" in out
    results = json.loads((project.root / "audit.json").read_text())
    assert results["attack"] == "loss" and 0.0 <= results["auc"]["low"] <= results["auc"]["value"] <= results["auc"]["high"] <= 1.0
    assert project.run("audit", "digits.pt", "--attack", "loss", "--fail-above", "0.01") == 1
    assert project.run("audit", "digits.pt", "--attack", "nope") == 4
