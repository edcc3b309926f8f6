"""`safecompress audit`: one attack, its metrics with intervals, JSON out, usage errors."""

from __future__ import annotations

import json

import pytest

FACTORY = """
import safecompress
import torch


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
"""


def digits_project(project) -> None:
    """A digits project with a linear classifier trained on its members, saved as digits.pt."""
    import torch

    from safecompress.data import digits
    from safecompress.training import TrainRecipe, fit

    project.write("pyproject.toml", '[tool.safecompress]\ndata = "digits"\n')
    project.write("conftest.py", FACTORY)
    data = digits(seed=0)
    torch.manual_seed(0)
    model = fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), data.members, TrainRecipe(epochs=30, batch_size=32), seed=0, device="cpu")
    torch.save(model.state_dict(), project.root / "digits.pt")


def test_audit_loss_attack_on_digits(project, capsys) -> None:
    digits_project(project)
    assert project.run("audit", "digits.pt", "--attack", "loss", "--json", "audit.json") == 0
    out = capsys.readouterr().out
    assert "loss (tier 0): AUC" in out and "TPR@1.0% FPR" in out
    results = json.loads((project.root / "audit.json").read_text())
    assert results["attack"] == "loss" and 0.0 <= results["auc"]["low"] <= results["auc"]["value"] <= results["auc"]["high"] <= 1.0
    assert project.run("audit", "digits.pt", "--attack", "loss", "--fail-above", "0.01") == 1
    assert project.run("audit", "digits.pt", "--attack", "nope") == 4


def test_audit_robustness_and_inversion_on_digits(project, capsys) -> None:
    digits_project(project)
    assert project.run("audit", "digits.pt", "--attack", "pgd", "--eps", "0.05", "--steps", "5", "--json", "pgd.json") == 0
    assert "pgd: robust accuracy" in capsys.readouterr().out
    pgd = json.loads((project.root / "pgd.json").read_text())
    assert pgd["kind"] == "robustness" and pgd["eps"] == 0.05 and pgd["steps"] == 5 and pgd["split"] == "test"
    assert pgd["robust_accuracy"]["low"] <= pgd["robust_accuracy"]["value"] <= pgd["clean_accuracy"]["value"]
    assert project.run("audit", "digits.pt", "--attack", "fgsm", "--fail-below", "0.999") == 1  # no linear model is that robust
    assert project.run("audit", "digits.pt", "--attack", "inversion") == 0
    assert "inversion (tier 1): AUC" in capsys.readouterr().out
    assert project.run("audit", "digits.pt", "--attack", "nasr-whitebox") == 0
    misuses = (["pgd", "--fail-above", "0.5"], ["rmia", "--eps", "0.1"], ["fgsm", "--steps", "3"], ["loss", "--fail-below", "0.5"], ["pgd", "--refs", "2"])
    for bad in (["--attack", *misuse] for misuse in misuses):
        assert project.run("audit", "digits.pt", *bad) == 4, bad


def test_audit_scores_name_the_row_each_score_belongs_to(project, capsys) -> None:
    """`audit --json --scores`: per-row scores an outside auditor can join to the data. Checked
    against the definition: the loss attack's score of a row is minus the model's loss on it."""
    import torch

    from safecompress.data import digits

    digits_project(project)
    assert project.run("audit", "digits.pt", "--attack", "loss", "--scores", "-q") == 4  # --scores needs --json
    assert project.run("audit", "digits.pt", "--attack", "loss", "--json", "audit.json", "--scores", "-q") == 0
    results = json.loads((project.root / "audit.json").read_text())
    rows = results["rows"]
    assert len(rows["index"]) == len(results["scores"]) == len(results["membership"]) == results["members"] + results["non_members"]
    assert [split == "members" for split in rows["split"]] == [bool(m) for m in results["membership"]]
    calibration = {(name, index) for name, indices in rows["calibration"].items() for index in indices}
    assert calibration and not set(zip(rows["split"], rows["index"])) & calibration
    assert rows["inputs"]["normalization"] and rows["source"] == digits(seed=0).source
    data = digits(seed=0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    model.load_state_dict(torch.load(project.root / "digits.pt", weights_only=True))
    for split_name, index, score in list(zip(rows["split"], rows["index"], results["scores"]))[::37]:
        split = getattr(data, split_name)
        position = int((split.indices == index).nonzero()[0][0])
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(model(split.inputs[position : position + 1]), split.labels[position : position + 1])
        assert score == pytest.approx(-float(loss), rel=1e-4, abs=1e-5), (split_name, index)
