"""End to end on real Fashion-MNIST: a deliberately overfit small CNN leaks; non-members vs non-members do not.

One target (500 members, 40 epochs: train accuracy 100 %, test ~82 %) and two reference models are
trained once per module; the null run reuses the references from the cache (same population, seed).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from _attack_support import fashion_mnist_splits, one_thread  # noqa: F401  (one_thread: a fixture)

from safecompress.attacks import BUILTIN_ATTACKS, AttackResults, ReferenceRecipe, run_attacks
from safecompress.data.splits import DataSplits
from safecompress.inference import accuracy
from safecompress.models import small_cnn
from safecompress.training import TrainRecipe, fit

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

RECIPE = TrainRecipe(epochs=40, batch_size=32, lr=1e-3, optimizer="adam")
FACTORY = partial(small_cnn, width=16)
ALL = sorted(name for name, spec in BUILTIN_ATTACKS.items() if spec.kind == "membership")  # inversion included: it scores members too


@pytest.fixture(scope="module")
def splits() -> DataSplits:
    return fashion_mnist_splits(members=500, non_members=1000, population=1000, test=500, seed=0)


@pytest.fixture(scope="module")
def target(splits: DataSplits) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = FACTORY()
    return fit(model, splits.members, RECIPE, seed=0, device="cpu")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("refs")


def _attack_all(model: torch.nn.Module, splits: DataSplits, cache_dir: Path) -> dict[str, AttackResults]:
    return run_attacks(ALL, model, splits, device="cpu", refs=2, recipe=ReferenceRecipe(FACTORY, RECIPE), cache_dir=cache_dir, seed=0)


@pytest.fixture(scope="module")
def results(target: torch.nn.Module, splits: DataSplits, cache_dir: Path) -> dict[str, AttackResults]:
    return _attack_all(target, splits, cache_dir)


def test_the_target_is_overfit(target: torch.nn.Module, splits: DataSplits) -> None:
    assert accuracy(target, splits.members, "cpu") > 0.99
    assert accuracy(target, splits.test, "cpu") < 0.9


def test_the_loss_attack_detects_the_overfit_model(results: dict[str, AttackResults]) -> None:
    loss = results["loss"]
    assert loss.n_members == loss.n_non_members == 250
    assert loss.auc.value > 0.58, loss.summary()


def test_rmia_with_two_references_is_not_weaker_than_the_loss_attack(results: dict[str, AttackResults]) -> None:
    assert results["rmia"].extra["references"] == 2
    assert results["rmia"].auc.value >= results["loss"].auc.value - 0.01, results["rmia"].summary()


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_reference_attacks_have_power_at_low_fpr(results: dict[str, AttackResults], name: str) -> None:
    # the whole interval above twice the FPR: an attack at chance (TPR ≈ FPR) fails this on 250 members
    assert results[name].tpr_at(0.01).tpr.low > 0.02, results[name].summary()


def test_the_white_box_attack_learns_without_evaluation_data(results: dict[str, AttackResults]) -> None:
    white = results["nasr_whitebox"]
    assert white.auc.value > 0.58 and white.extra["holdout_rows"] > 0, white.summary()


def test_every_attack_is_blind_between_two_non_member_sets(target: torch.nn.Module, splits: DataSplits, cache_dir: Path) -> None:
    first, second = splits.non_members.split(0.5, seed=1)
    null = DataSplits(first, second, splits.population, splits.test, num_classes=10, source=splits.source)
    for name, result in _attack_all(target, null, cache_dir).items():
        assert abs(result.auc.value - 0.5) < 0.1, f"{name}: {result.summary()}"
        assert result.auc.low < 0.5 + 0.03, f"{name}: {result.summary()}"
