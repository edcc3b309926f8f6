"""The driver's API: propose candidates cheaply, apply one, snapshot and restore around probe fine-tunes."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sparse_testkit import TinyNet, assert_masked, make_optimizer, train_step

from safecompress.sparse import GrowthSpec, PruneSchedule, SparseEngine

SPECS = [
    GrowthSpec("random", seed=0),
    GrowthSpec("random", seed=1),
    GrowthSpec("gradient"),
    GrowthSpec("momentum"),
    GrowthSpec("random", seed=0, prune_fraction=0.1, name="gentle"),
]


def at_first_update(optimizer: str = "adamw"):
    torch.manual_seed(0)
    model = TinyNet()
    opt = make_optimizer(optimizer, model.parameters())
    engine = SparseEngine(
        model,
        opt,
        0.1,
        schedule=PruneSchedule(40, update_interval=5),
        auto_update=False,
        extra_growth=("gradient", "momentum"),
        momentum_window=3,
    )
    for step in range(5):
        train_step(model, opt, engine, step)
    assert engine.is_update_step()
    return model, opt, engine


def state_of(model, opt, engine):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {i: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)} for i, s in opt.state_dict()["state"].items()},
        {k: v.clone() for k, v in engine.masks.items()},
        engine.step_count,
        engine.num_updates,
        engine.exploration_rate(),
    )


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_propose_is_cheap_and_leaves_the_model_alone():
    model, opt, engine = at_first_update()
    before = state_of(model, opt, engine)
    candidates = engine.propose(SPECS)
    assert same(before, state_of(model, opt, engine))
    assert [c.name for c in candidates] == ["random-s0", "random-s1", "gradient", "momentum", "gentle"]
    for c in candidates:
        assert all(m.dtype == torch.bool for m in c.masks.values())
        assert {n: int(m.sum()) for n, m in c.masks.items()} == {n: int(m.sum()) for n, m in engine.masks.items()}
    distinct = {tuple(torch.cat([m.flatten() for m in c.masks.values()]).nonzero().flatten().tolist()) for c in candidates}
    assert len(distinct) == len(candidates)
    assert candidates[4].num_replaced < candidates[0].num_replaced  # differs in prune fraction too
    assert candidates[0].prune_fraction == pytest.approx(engine.prune_fraction())
    # Same seed, same update: the same candidate again.
    again = engine.propose([GrowthSpec("random", seed=0)])[0]
    assert all(torch.equal(again.masks[n], candidates[0].masks[n]) for n in engine.names)


def test_probe_each_candidate_then_keep_a_winner():
    model, opt, engine = at_first_update()
    candidates = engine.propose(SPECS)
    snap = engine.snapshot()
    reference = state_of(model, opt, engine)
    probed = []
    for c in candidates:
        engine.apply(c)
        assert_masked(engine, opt)
        for step in range(5, 8):
            train_step(model, opt, engine, step)
        probed.append(state_of(model, opt, engine))
        engine.restore(snap)
        assert same(reference, state_of(model, opt, engine))
    # A probe from a restored snapshot is reproducible: same RNG (dropout), same optimizer state.
    engine.apply(candidates[0])
    for step in range(5, 8):
        train_step(model, opt, engine, step)
    assert same(probed[0], state_of(model, opt, engine))
    assert engine.num_updates == 1


def test_apply_refuses_a_candidate_from_another_topology():
    model, opt, engine = at_first_update()
    first, second = engine.propose(SPECS[:2])
    snap = engine.snapshot()
    engine.apply(first)
    stale = engine.propose([GrowthSpec("random", seed=3)])[0]
    with pytest.raises(ValueError, match="another topology"):
        engine.apply(second)
    engine.restore(snap)
    with pytest.raises(ValueError, match="another topology"):
        engine.apply(stale)
    engine.apply(second)


def test_snapshot_restores_global_rng_and_can_live_on_cpu():
    model, opt, engine = at_first_update("nesterov")
    snap = engine.snapshot(device="cpu")
    draws = (torch.rand(3), random.random(), np.random.rand())
    engine.restore(snap)
    assert same(draws[0], torch.rand(3)) and draws[1] == random.random() and draws[2] == np.random.rand()


def test_update_applies_one_candidate_with_the_default_rule():
    model, opt, engine = at_first_update()
    ever_before = engine.exploration_rate()
    candidate = engine.update(GrowthSpec("gradient"))
    assert engine.num_updates == 1 and candidate.num_replaced > 0
    assert engine.exploration_rate() > ever_before
    assert_masked(engine, opt)
