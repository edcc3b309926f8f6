"""The training recipe, reference-model cache, per-sample gradients and model-in wrappers (tiny models)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from _attack_support import one_thread  # noqa: F401  (a fixture)
from torch import nn

from safecompress.attacks import BUILTIN_ATTACKS, ReferenceRecipe, Reinitialised, Role, last_layer_gradients, make_attack_inputs, run_attack, run_attacks, train_reference_models
from safecompress.attacks.data_structures import AttackResults, scores_to_results
from safecompress.attacks.reference import reference_membership, resolve_cache_dir
from safecompress.data.splits import DataSplits, Split
from safecompress.errors import UsageError
from safecompress.models import small_cnn, tiny_bert
from safecompress.training import TrainRecipe, fit

TINY = TrainRecipe(epochs=2, batch_size=16, lr=1e-2)

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, offset: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), np.arange(offset, offset + n))


def _splits(members: int = 40, non_members: int = 40, population: int = 40) -> DataSplits:
    sizes = [members, non_members, population, 10]
    offsets = np.cumsum([0, *sizes])
    return DataSplits(*[_images(n, int(o), i) for i, (n, o) in enumerate(zip(sizes, offsets))], num_classes=10, source="random")


def _tiny_cnn() -> nn.Module:
    return small_cnn(width=4)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_is_deterministic_per_seed_and_leaves_global_rng_alone() -> None:
    split = _images(48, 0, 0)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        model = _tiny_cnn()
        before = torch.random.get_rng_state()
        fit(model, split, TINY, seed=seed, device="cpu")
        assert torch.equal(before, torch.random.get_rng_state())
        runs.append(_state(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_fit_runs_every_optimizer_and_calls_back_every_step(optimizer: str) -> None:
    steps: list[int] = []
    calls: list[torch.Tensor] = []

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append(x)
        return x + 0.01 * torch.randn(x.shape, generator=generator, device=x.device)

    recipe = TrainRecipe(epochs=2, batch_size=16, lr=1e-2, optimizer=optimizer, augment=augment)  # type: ignore[arg-type]
    model = fit(_tiny_cnn(), _images(33, 0, 1), recipe, seed=0, device="cpu", step_callback=lambda step, m, opt, loss: steps.append(step))
    assert steps == list(range(1, 5)) and len(calls) == 4  # the one-sample tail batch is skipped
    assert not model.training
    assert recipe.describe()["augment"].endswith("augment")


def test_fit_trains_transformers_on_dict_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(0, 50, (24, 8), generator=g), "attention_mask": torch.ones(24, 8, dtype=torch.long)}
    split = Split(inputs, torch.randint(0, 2, (24,), generator=g), np.arange(24))
    losses: list[float] = []
    fit(
        tiny_bert(2, vocab_size=50, hidden_size=32, layers=1),
        split,
        TrainRecipe(epochs=3, batch_size=8, lr=1e-3),
        seed=0,
        device="cpu",
        step_callback=lambda step, m, opt, loss: losses.append(float(loss)),
    )
    assert len(losses) == 9 and all(np.isfinite(losses))


def test_recipe_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        TrainRecipe(optimizer="lbfgs")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid recipe"):
        TrainRecipe(batch_size=0)


def test_reference_halves_are_complementary_pairs() -> None:
    masks = reference_membership(101, 5, seed=0)
    assert (masks[0] ^ masks[1]).all() and (masks[2] ^ masks[3]).all()
    assert masks[4].sum() == 50 and not np.array_equal(masks[0], masks[2])


def test_reference_models_are_cached_by_recipe_data_and_seed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pool = _images(40, 0, 5)
    recipe = ReferenceRecipe(_tiny_cnn, TINY)
    first = train_reference_models(recipe, pool, 2, seed=0, device="cpu", cache_dir=tmp_path)
    assert first.loaded_from_cache == [False, False] and len(list(tmp_path.glob("*.safetensors"))) == 2
    with caplog.at_level(logging.INFO, logger="safecompress.attacks.reference"):
        again = train_reference_models(recipe, pool, 2, seed=0, device="cpu", cache_dir=tmp_path)
    assert again.loaded_from_cache == [True, True] and "loaded from cache" in caplog.text
    for a, b in zip(first.models, again.models):
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    changed = [
        train_reference_models(ReferenceRecipe(_tiny_cnn, TrainRecipe(epochs=1, batch_size=16, lr=1e-2)), pool, 1, seed=0, device="cpu", cache_dir=tmp_path),
        train_reference_models(recipe, _images(40, 100, 6), 1, seed=0, device="cpu", cache_dir=tmp_path),
        train_reference_models(recipe, pool, 1, seed=1, device="cpu", cache_dir=tmp_path),
        train_reference_models(ReferenceRecipe(partial(small_cnn, width=6), TINY), pool, 1, seed=0, device="cpu", cache_dir=tmp_path),
    ]
    assert all(c.keys[0] not in first.keys and not c.loaded_from_cache[0] for c in changed)


def test_a_corrupt_cache_file_is_retrained(tmp_path: Path) -> None:
    pool = _images(20, 0, 5)
    recipe = ReferenceRecipe(_tiny_cnn, TINY)
    first = train_reference_models(recipe, pool, 1, seed=0, device="cpu", cache_dir=tmp_path)
    (tmp_path / f"{first.keys[0]}.safetensors").write_bytes(b"not a state dict")
    assert train_reference_models(recipe, pool, 1, seed=0, device="cpu", cache_dir=tmp_path).loaded_from_cache == [False]


def test_cache_dir_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path))
    assert resolve_cache_dir() == tmp_path / "refs"
    assert resolve_cache_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.delenv("SAFECOMPRESS_CACHE_DIR")
    assert resolve_cache_dir() == Path.home() / ".cache" / "safecompress" / "refs"


def test_reinitialised_copies_keep_the_architecture_but_not_the_weights() -> None:
    template = _tiny_cnn()
    fresh = Reinitialised(template)()
    assert [(k, v.shape) for k, v in fresh.state_dict().items()] == [(k, v.shape) for k, v in template.state_dict().items()]
    assert not torch.equal(fresh.state_dict()["features.0.weight"], template.state_dict()["features.0.weight"])
    assert "SmallCNN" in Reinitialised(template).describe()


def test_last_layer_gradients_match_per_sample_autograd() -> None:
    torch.manual_seed(0)
    model, split = _tiny_cnn().eval(), _images(10, 0, 7)
    fast = last_layer_gradients(model, split, device="cpu", batch_size=4)
    head = model.classifier[-1]
    for i in range(len(split)):
        model.zero_grad()
        nn.functional.cross_entropy(model(split.inputs[i : i + 1]), split.labels[i : i + 1]).backward()
        slow = torch.cat([head.weight.grad.flatten(), head.bias.grad.flatten()]).numpy()
        np.testing.assert_allclose(fast[i], slow, rtol=1e-4, atol=1e-6)
    assert fast.shape == (10, head.weight.numel() + head.bias.numel())


def test_last_layer_gradients_refuse_a_head_that_is_not_the_output() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Tanh())
    with pytest.raises(ValueError, match="not the model's logits"):
        last_layer_gradients(model, _images(4, 0, 0), device="cpu")


def test_make_attack_inputs_follows_the_protocol(tmp_path: Path) -> None:
    splits = _splits(40, 60, 40)
    inputs = make_attack_inputs(_tiny_cnn(), splits, device="cpu", seed=1, refs=2, recipe=ReferenceRecipe(_tiny_cnn, TINY), cache_dir=tmp_path, gradients=True)
    assert len(inputs) == 140 and inputs.ref_logits.shape == (2, 140, 10) and inputs.gradients.shape[0] == 140
    np.testing.assert_array_equal(inputs.source_indices, np.r_[splits.members.indices, splits.non_members.indices, splits.population.indices])
    evaluation = inputs.role == Role.EVALUATION
    assert inputs.membership[evaluation].sum() * 2 == evaluation.sum() == 40
    assert not inputs.ref_in[:, :100].any() and (inputs.ref_in[:, 100:].sum(axis=0) == 1).all()  # offline: targets OUT everywhere
    online = make_attack_inputs(_tiny_cnn(), splits, device="cpu", refs=2, online=True, recipe=ReferenceRecipe(_tiny_cnn, TINY), cache_dir=tmp_path)
    assert (online.ref_in.sum(axis=0) == 1).all()


def test_run_attack_by_name_with_defaults_and_plugins(tmp_path: Path) -> None:
    splits, model = _splits(), _tiny_cnn()
    with pytest.warns(UserWarning, match="no reference recipe given and no safety session running"):
        result = run_attack("rmia", model, splits, device="cpu", recipe=None, cache_dir=tmp_path, seed=0)
    assert result.extra["protocol"]["references"] == 2 and result.tier == 2

    def constant(inputs):  # a plugin's bare attack: takes inputs only
        return scores_to_results("constant", inputs, np.zeros(len(inputs)))

    both = run_attacks(["loss", "constant"], model, splits, device="cpu", registry={"loss": BUILTIN_ATTACKS["loss"], "constant": constant})
    assert isinstance(both["constant"], AttackResults) and both["constant"].auc.value == 0.5
    with pytest.raises(UsageError, match="unknown attack 'nope'; known: confidence"):
        run_attack("nope", model, splits, device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_suite_runs_on_cuda(tmp_path: Path) -> None:
    splits = _splits(64, 64, 64)
    names = ["loss", "mentr", "nasr", "nasr_whitebox", "lira", "rmia"]
    on_gpu = run_attacks(names, _tiny_cnn(), splits, device="cuda", refs=2, recipe=ReferenceRecipe(_tiny_cnn, TINY), cache_dir=tmp_path)
    assert all(r.extra["protocol"]["device"].startswith("cuda") for r in on_gpu.values())
    assert all(0 <= r.auc.value <= 1 for r in on_gpu.values())
