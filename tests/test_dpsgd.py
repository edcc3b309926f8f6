"""DP-SGD through Opacus on a masked model: the budget is spent as asked, masks hold, runs repeat."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("opacus")

from safecompress.data import fashion_mnist_embedded  # noqa: E402
from safecompress.dpsgd import PrivacyBudget, fit_private  # noqa: E402
from safecompress.errors import UsageError  # noqa: E402
from safecompress.models import small_cnn  # noqa: E402
from safecompress.sparse.engine import SparseEngine  # noqa: E402
from safecompress.training import TrainRecipe, seeded  # noqa: E402

RECIPE = TrainRecipe(epochs=3, batch_size=32, lr=1e-3)


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_embedded(members=128, non_members=128, population=64, test=64, seed=0)


def fresh_model() -> torch.nn.Module:
    with seeded(0, torch.device("cpu")):
        return small_cnn(10, width=4)


def magnitude_masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(SparseEngine(copy.deepcopy(model), None, 0.2, init="magnitude").masks)


def test_budget_is_spent_as_asked_and_masks_hold(data) -> None:
    model = fresh_model()
    masks = magnitude_masks(model)
    before = copy.deepcopy(model.state_dict())
    spent = fit_private(model, data.members, RECIPE, PrivacyBudget(4.0), masks=masks, seed=3, device="cpu")
    assert spent.epsilon == pytest.approx(4.0, rel=0.02) and spent.epsilon <= 4.0 + 1e-6
    assert spent.delta == pytest.approx(1 / 128) and spent.noise_multiplier > 0 and spent.steps > 0
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert not params[name][~mask].any()  # pruned positions stay zero after private steps
        assert params[name][mask].ne(before[name][mask]).any()  # live ones trained
    assert not hasattr(params["features.0.weight"], "grad_sample")  # Opacus's hooks and buffers are gone
    assert model(data.test.inputs).shape == (64, 10)


def test_smaller_epsilon_means_more_noise(data) -> None:
    loose = fit_private(fresh_model(), data.members, RECIPE, PrivacyBudget(8.0), seed=0, device="cpu")
    tight = fit_private(fresh_model(), data.members, RECIPE, PrivacyBudget(1.0), seed=0, device="cpu")
    assert tight.noise_multiplier > loose.noise_multiplier and tight.epsilon < loose.epsilon


def test_same_seed_same_weights(data) -> None:
    runs = []
    for _ in range(2):
        model = fresh_model()
        fit_private(model, data.members, RECIPE, PrivacyBudget(2.0), masks=magnitude_masks(model), seed=5, device="cpu")
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("kwargs", [{"epsilon": 0.0}, {"epsilon": float("nan")}, {"epsilon": 1.0, "delta": 1.5}, {"epsilon": 1.0, "max_grad_norm": -1.0}])
def test_bad_budgets_are_usage_errors(kwargs: dict) -> None:
    with pytest.raises(UsageError):
        PrivacyBudget(**kwargs)


def test_masks_must_name_model_parameters(data) -> None:
    with pytest.raises(UsageError, match="does not have"):
        fit_private(fresh_model(), data.members, RECIPE, PrivacyBudget(1.0), masks={"nope.weight": torch.ones(1, dtype=torch.bool)}, seed=0, device="cpu")
