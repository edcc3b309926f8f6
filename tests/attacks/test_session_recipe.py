"""Attacks called inside a safety session train their references by the session's own recipe and
model factory (issue 13): a user's RMIA test needs no hand-wired ReferenceRecipe, and no warning."""

from __future__ import annotations

import pytest

from safecompress.attacks.wrappers import session_reference_recipe

CONFTEST = """
import numpy as np
import safecompress
import torch
from sklearn.datasets import load_breast_cancer

from safecompress.data.splits import DataSplits, Split
from safecompress.training import TrainRecipe


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torch.nn.Linear(4, 2)


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=2, batch_size=16, lr=1e-2)


@safecompress.fixture(scope="session")
def data():
    x, y = load_breast_cancer(return_X_y=True)
    x = (x[:, :4] - x[:, :4].mean(0)) / x[:, :4].std(0)
    rows = np.random.default_rng(0).permutation(len(y))
    part = lambda r, n: Split(torch.tensor(x[r], dtype=torch.float32), torch.tensor(y[r]), r, n)
    return DataSplits(part(rows[:100], "members"), part(rows[100:200], "non_members"), part(rows[200:400], "population"), part(rows[400:], "test"), num_classes=2)
"""

TEST = """
import warnings

from safecompress.attacks import make_attack_inputs, rmia_attack
from safecompress.attacks.wrappers import session_reference_recipe


def test_references_follow_the_session(model, data, record):
    recipe = session_reference_recipe(None)
    assert (recipe.train.epochs, recipe.train.batch_size) == (2, 16)
    assert type(recipe.factory()).__name__ == "Linear"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no reference recipe given" warning inside a session
        inputs = make_attack_inputs(model, data, refs=1, seed=0)
    record.metric("rmia_auc", rmia_attack(inputs).auc.value)
"""


def test_inside_a_session_references_use_its_recipe_and_factory(project, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    project.write("conftest.py", CONFTEST)
    project.write("safety_tests/test_refs.py", TEST)
    assert project.run("test", "model.pt", "-q", "--json", "out.json") == 0
    cached = list((tmp_path / "cache" / "refs").rglob("*"))
    assert cached, "the reference was trained and cached"


def test_outside_a_session_a_missing_recipe_is_a_warning() -> None:
    with pytest.warns(UserWarning, match="no safety session running"):
        assert session_reference_recipe(None) is None
    given = object()
    assert session_reference_recipe(given) is given  # type: ignore[arg-type]
