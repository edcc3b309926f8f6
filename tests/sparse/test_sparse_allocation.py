"""Initial allocation (exact ERK, uniform, magnitude) and the prune schedule."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from safecompress.sparse import (
    PruneSchedule,
    erk_densities,
    exact_counts,
    find_maskable,
    initial_masks,
    layer_counts,
)


def vgg_like() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def test_erk_matches_hand_computed_vgg_case():
    # N = 432 + 4608 + 18432 + 32768 + 1280 = 57520; d = 0.2 → 11504 weights.
    # s·N = Σshape: 25, 54, 102, 384, 138 (sum 703). ε = 11504/703 = 16.36 → fc2: 16.36·138/1280 = 1.76 > 1
    # → dense. Re-solve: ε = (11504 − 1280)/565 = 18.10 → conv1: 18.10·25/432 = 1.047 > 1 → dense.
    # Re-solve: ε = (10224 − 432)/540 = 272/15 → conv2 979.2, conv3 1849.6, fc1 6963.2 weights
    # (sum 9792); largest remainder gives the spare weight to conv3.
    params = find_maskable(vgg_like())
    shapes = [p.shape for p in params]
    eps = 272 / 15
    expected = [1.0, eps * 54 / 4608, eps * 102 / 18432, eps * 384 / 32768, 1.0]
    assert erk_densities(shapes, 0.2) == pytest.approx(expected, rel=1e-12)
    counts = layer_counts(shapes, 0.2, "erk")
    assert counts == [432, 979, 1850, 6963, 1280]
    masks = initial_masks(params, 0.2, "erk", generator=torch.Generator().manual_seed(3))
    assert [int(m.sum()) for m in masks] == counts
    assert sum(counts) == 11504 == round(0.2 * 57520)


def test_erk_without_dense_layers():
    shapes = [p.shape for p in find_maskable(vgg_like())]
    eps = 5752 / 703
    assert erk_densities(shapes, 0.1) == pytest.approx([eps * s / math.prod(sh) for s, sh in zip([25, 54, 102, 384, 138], shapes)])


@pytest.mark.parametrize("distribution", ["erk", "uniform"])
def test_counts_are_exact_for_many_random_nets(distribution):
    rng = random.Random(0)
    for _ in range(200):
        shapes = [tuple(rng.randint(1, 40) for _ in range(rng.choice([2, 4]))) for _ in range(rng.randint(1, 8))]
        density = rng.uniform(0.001, 1.0)
        counts = layer_counts(shapes, density, distribution)
        numels = [math.prod(s) for s in shapes]
        assert sum(counts) == round(density * sum(numels))
        ideal = erk_densities(shapes, density) if distribution == "erk" else [density] * len(shapes)
        for c, d, n in zip(counts, ideal, numels):
            assert 0 <= c <= n and abs(c - d * n) < 1.0


def test_exact_counts_respects_layer_sizes():
    assert exact_counts([1.0, 0.5], [3, 5], 6) == [3, 3]
    with pytest.raises(ValueError):
        exact_counts([1.0], [3], 4)


def test_random_init_is_seeded_and_exact():
    params = find_maskable(vgg_like())
    a = initial_masks(params, 0.05, "erk", generator=torch.Generator().manual_seed(1))
    b = initial_masks(params, 0.05, "erk", generator=torch.Generator().manual_seed(1))
    c = initial_masks(params, 0.05, "erk", generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert sum(int(m.sum()) for m in a) == round(0.05 * sum(p.numel for p in params))


def test_layerwise_magnitude_keeps_largest_weights():
    torch.manual_seed(0)
    params = find_maskable(vgg_like())
    masks = initial_masks(params, 0.1, "uniform", init="magnitude")
    for p, m in zip(params, masks):
        w = p.param.detach().abs()
        assert abs(int(m.sum()) - 0.1 * p.numel) < 1
        assert w[m].min() >= w[~m].max()


def test_global_magnitude_uses_one_threshold():
    torch.manual_seed(0)
    model = vgg_like()
    with torch.no_grad():
        model[0].weight.mul_(100.0)  # a layer of large weights should keep far more than d
    params = find_maskable(model)
    masks = initial_masks(params, 0.1, "magnitude_global")
    kept = torch.cat([p.param.detach().abs()[m] for p, m in zip(params, masks)])
    dropped = torch.cat([p.param.detach().abs()[~m] for p, m in zip(params, masks)])
    assert kept.min() >= dropped.max()
    assert sum(int(m.sum()) for m in masks) == round(0.1 * 57520)
    assert masks[0].float().mean() > 0.9
    with pytest.raises(ValueError, match="magnitude"):
        initial_masks(params, 0.1, "magnitude_global", init="random")


def test_density_and_names_are_validated():
    params = find_maskable(vgg_like())
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="density"):
            initial_masks(params, bad)
    with pytest.raises(ValueError, match="distribution"):
        initial_masks(params, 0.1, "bernoulli")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init"):
        initial_masks(params, 0.1, "erk", init="xavier")  # type: ignore[arg-type]
    assert layer_counts([p.shape for p in params], 1.0, "erk") == [p.numel for p in params]


def test_cosine_schedule_endpoints_and_midpoint():
    s = PruneSchedule(1000, update_interval=100)
    assert s.prune_fraction(0) == pytest.approx(0.5)
    assert s.prune_fraction(500) == pytest.approx(0.005 + 0.495 / 2)
    assert s.prune_fraction(1000) == pytest.approx(0.005)
    assert s.update_steps() == list(range(100, 901, 100))  # none in the last 10 %
    assert not s.is_update_step(1000) and s.is_update_step(900) and not s.is_update_step(150)


def test_schedule_from_target_number_of_updates():
    s = PruneSchedule(1003, num_updates=7, stop_fraction=0.2)
    assert len(s.update_steps()) == 7 and s.update_steps()[-1] <= s.stop_step
    assert len(PruneSchedule(90).update_steps()) == 25  # default count, even though ΔT rounds down
    assert PruneSchedule(100, num_updates=0).update_steps() == []
    assert s.next_update_step(1) == s.interval and s.next_update_step(s.stop_step + 1) is None
    with pytest.raises(ValueError):
        PruneSchedule(100, update_interval=5, num_updates=3)
    with pytest.raises(ValueError):
        PruneSchedule(100, p0=0.1, p_min=0.2)
