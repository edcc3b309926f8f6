"""Engine invariants, enforced after every step, over growth rules × optimizers (METHOD.md §1–2)."""

from __future__ import annotations

import logging
import os

import pytest
import torch
from sparse_testkit import OPTIMIZERS, TinyNet, assert_masked, batch, make_optimizer, train_step
from torch import nn

from safecompress.sparse import GROWTH_RULES, GrowthSpec, PruneSchedule, SparseEngine

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(growth: str = "random", optimizer: str = "sgd", density: float = 0.2, total: int = 30, interval: int = 5, **kwargs):
    torch.manual_seed(0)
    model = TinyNet()
    opt = make_optimizer(optimizer, model.parameters())
    engine = SparseEngine(model, opt, density, growth=growth, schedule=PruneSchedule(total, update_interval=interval), **kwargs)
    return model, opt, engine


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("growth", GROWTH_RULES)
def test_invariants_hold_after_every_step(growth, optimizer):
    model, opt, engine = build(growth, optimizer)
    nnz = {n: int(m.sum()) for n, m in engine.masks.items()}
    updates = 0
    weights_before: dict[str, torch.Tensor] = {}
    opt.register_step_post_hook(lambda *_: weights_before.update({n: p.detach().clone() for n, p in zip(engine.names, engine.params)}))
    for step in range(30):
        before = engine.masks
        updated = train_step(model, opt, engine, step)
        assert_masked(engine, opt)
        after = engine.masks
        assert {n: int(m.sum()) for n, m in after.items()} == nnz  # per-layer density constant
        if not updated:
            assert all(after[n] is before[n] for n in after)
            continue
        updates += 1
        for name, param in zip(engine.names, engine.params):
            grown, pruned = after[name] & ~before[name], before[name] & ~after[name]
            assert int(grown.sum()) == int(pruned.sum())  # exactly k grown per layer, never where active
            assert torch.count_nonzero(param.detach()[grown]) == 0  # new weights start at zero
            for value in opt.state[param].values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    assert torch.count_nonzero(value[grown]) == 0  # with zeroed optimizer state
            if int(pruned.sum()):
                # Magnitude prune: every pruned weight was no larger than every surviving one.
                w = weights_before[name].abs()
                assert w[pruned].max() <= w[before[name] & after[name]].min()
    assert updates == len(engine.schedule.update_steps()) == engine.num_updates == 5
    assert engine.density() == pytest.approx(0.2, abs=1e-4)
    assert engine.exploration_rate() > 0.2


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_masking_gradients_alone_keeps_weights_and_state_zero(optimizer, monkeypatch):
    """Why per-step upkeep is one multiply: with masked gradients these optimizers never move a pruned weight."""
    model, opt, engine = build("random", optimizer, mask_weights_every_step=False)
    monkeypatch.setattr(engine, "apply_masks", lambda: pytest.fail("weights were masked"))
    for step in range(12):
        train_step(model, opt, engine, step)
        assert_masked(engine, opt)
    assert engine.num_updates == 2


def test_without_gradient_masking_optimizer_state_would_leak():
    """The control for the test above: masking only the weights leaves Adam moments nonzero."""
    model, opt, engine = build("random", "adam")
    engine.remove()
    for step in range(3):
        train_step(model, opt, engine, step)
        engine.apply_masks()
    param, mask = engine.params[2], engine.masks[engine.names[2]]
    assert torch.count_nonzero(param.detach()[~mask]) == 0
    assert torch.count_nonzero(opt.state[param]["exp_avg_sq"][~mask]) > 0


class DriftingSGD(torch.optim.SGD):
    """An optimizer the engine does not know: it moves every weight, pruned or not."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1e-3)
        return loss


def test_unknown_optimizers_get_the_weight_multiply_too():
    torch.manual_seed(0)
    model = TinyNet()
    opt = DriftingSGD(model.parameters(), lr=0.05, momentum=0.9)
    engine = SparseEngine(model, opt, 0.2, schedule=PruneSchedule(12, update_interval=4))
    for step in range(12):
        train_step(model, opt, engine, step)
        assert_masked(engine, None)


def test_gradient_growth_takes_largest_dense_gradient():
    model, opt, engine = build("gradient", "sgd", auto_update=False)
    for step in range(5):
        train_step(model, opt, engine, step)
    x, y = batch(99)
    engine.compute_dense_gradient(lambda: nn.functional.cross_entropy(model(x), y))
    dense = [g.abs() for g in engine._dense_grad]
    (cand,) = engine.propose([GrowthSpec("gradient", prune_fraction=0.3)])
    for i, name in enumerate(engine.names):
        before, after = engine.masks[name], cand.masks[name]
        grown = after & ~before
        rest = ~before & ~grown
        if grown.any() and rest.any():
            assert dense[i][grown].min() >= dense[i][rest].max()


def test_momentum_growth_uses_dense_gradient_ema_before_the_update():
    model, opt, engine = build("momentum", "adamw", momentum_window=3, momentum_beta=0.5, auto_update=False)
    ema = None
    for step in range(5):
        x, y = batch(step)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if step >= 2:  # steps 3, 4, 5 precede the update at step 5
            dense = [p.grad.detach().clone() for p in engine.params]
            ema = dense if ema is None else [0.5 * e + g for e, g in zip(ema, dense)]
        opt.step()
        engine.step()
    assert engine.is_update_step()
    (cand,) = engine.propose([GrowthSpec("momentum")])
    for i, name in enumerate(engine.names):
        before, grown = engine.masks[name], cand.masks[name] & ~engine.masks[name]
        rest = ~before & ~grown
        if grown.any() and rest.any():
            score = ema[i].abs()
            assert score[grown].min() >= score[rest].max()


def test_unfired_growth_prefers_never_active_positions():
    model, opt, engine = build("unfired", "sgd", density=0.05)
    for step in range(30):
        ever = [e.clone() for e in engine._ever]
        before = engine.masks
        if train_step(model, opt, engine, step):
            for i, name in enumerate(engine.names):
                grown = engine.masks[name] & ~before[name]
                assert not bool((grown & ever[i]).any())  # plenty of unexplored room at d = 0.05


def test_missing_signal_is_an_error_for_the_driver_and_a_fallback_in_training(caplog):
    model, opt, engine = build("random", "sgd", auto_update=False)
    with pytest.raises(ValueError, match="gradient growth has no signal"):
        engine.propose([GrowthSpec("gradient")])
    model, opt, engine = build("gradient", "sgd", total=10, interval=1)
    with caplog.at_level(logging.WARNING):
        engine.step()  # an optimizer step that was skipped (e.g. by GradScaler): no gradient seen
    assert engine.num_updates == 1 and "growing at random" in caplog.text


def test_mask_gradients_before_clipping_excludes_pruned_positions():
    model, opt, engine = build("random", "sgd")
    x, y = batch(0)
    nn.functional.cross_entropy(model(x), y).backward()
    engine.mask_gradients()
    for name, p in zip(engine.names, engine.params):
        assert torch.count_nonzero(p.grad[~engine.masks[name]]) == 0
    norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    assert torch.isfinite(norm)
    opt.step()
    engine.step()
    assert_masked(engine, opt)


@pytest.mark.parametrize("growth", ["gradient", "momentum"])
def test_bf16_autocast_on_cpu(growth):
    model, opt, engine = build(growth, "adamw")
    for step in range(20):
        train_step(model, opt, engine, step, autocast=True)
        assert_masked(engine, opt)
    assert engine.num_updates == 4


def test_bf16_model_weights():
    torch.manual_seed(0)
    model = TinyNet().to(torch.bfloat16)
    opt = make_optimizer("sgd", model.parameters())
    engine = SparseEngine(model, opt, 0.2, growth="gradient", schedule=PruneSchedule(12, update_interval=4))
    for step in range(12):
        train_step(model, opt, engine, step)
        assert_masked(engine, opt)
    assert engine.num_updates == 2


def test_torch_compile_sees_no_recompile_when_topology_changes():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model, opt, engine = build("gradient", "sgd", total=16, interval=4)
    compiled = torch.compile(model, backend="aot_eager")
    for step in range(16):
        x, y = batch(step)
        loss = nn.functional.cross_entropy(compiled(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        engine.step()
        assert_masked(engine, opt)
    assert engine.num_updates == 3 and counters["stats"]["unique_graphs"] == 1


def test_transformer_encoder_and_gpt2_conv1d_train_sparse():
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    bert = BertForSequenceClassification(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3))
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=60, n_embd=32, n_layer=1, n_head=2, n_positions=16))
    ids = torch.randint(0, 60, (4, 12), generator=torch.Generator().manual_seed(0))
    for model, loss_of in (
        (bert, lambda m: m(input_ids=ids, labels=torch.tensor([0, 1, 2, 0])).loss),
        (gpt2, lambda m: m(input_ids=ids, labels=ids).loss),
    ):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        engine = SparseEngine(model, opt, 0.1, growth="gradient", schedule=PruneSchedule(8, update_interval=3))
        for _ in range(8):
            opt.zero_grad()
            loss_of(model).backward()
            opt.step()
            engine.step()
            assert_masked(engine, opt)
        assert engine.num_updates == 2 and engine.density() == pytest.approx(0.1, abs=1e-4)


def test_explicit_masks_and_validation():
    model = nn.Sequential(nn.Linear(4, 3))
    mask = torch.tensor([[1, 0, 0, 1]] * 3, dtype=torch.bool)
    engine = SparseEngine(model, None, None, masks={"0.weight": mask})
    assert engine.density() == 0.5 and torch.count_nonzero(model[0].weight[~mask]) == 0
    with pytest.raises(ValueError, match="shape"):
        SparseEngine(model, None, None, masks={"0.weight": mask.t()})
    with pytest.raises(ValueError, match="density or explicit masks"):
        SparseEngine(model, None, None)
    with pytest.raises(ValueError, match="growth"):
        SparseEngine(model, None, 0.5, growth="smallest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no maskable"):
        SparseEngine(model, None, 0.5, exclude=["*"])
