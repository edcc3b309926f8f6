"""Initial allocation: how many weights each layer keeps, and which ones (METHOD.md §2).

Counts are exact: per-layer ideal counts d_l·N_l are rounded by largest remainder so the total is
exactly round(d·ΣN_l) and every layer is within one weight of its ideal. Users complain when a
"5 % model" is 5.3 % dense; Bernoulli draws (the research code) make exactly that mistake.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch

from safecompress.sparse.layers import MaskableParam

Distribution = Literal["erk", "uniform", "magnitude_global"]
Init = Literal["random", "magnitude"]
DISTRIBUTIONS = ("erk", "uniform", "magnitude_global")
INITS = ("random", "magnitude")


def erk_densities(shapes: Sequence[Sequence[int]], density: float) -> list[float]:
    """Erdős–Rényi-Kernel layer densities ε·s_l with s_l = Σshape/Πshape.

    Any layer whose ε·s_l exceeds 1 becomes dense and ε is solved again over the rest. Densifying a
    layer frees budget, so ε only grows and marking every over-full layer at once reaches the same
    fixed point as RigL's one-at-a-time loop.
    """
    _check_density(density)
    numels = [math.prod(s) for s in shapes]
    raw = [sum(s) / n for s, n in zip(shapes, numels)]
    target = density * sum(numels)
    dense: set[int] = set()
    while True:
        sparse = [i for i in range(len(shapes)) if i not in dense]
        if not sparse:
            return [1.0] * len(shapes)
        budget = target - sum(numels[i] for i in dense)
        eps = budget / sum(raw[i] * numels[i] for i in sparse)
        over = [i for i in sparse if eps * raw[i] > 1.0]
        if not over:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense.update(over)


def exact_counts(densities: Sequence[float], numels: Sequence[int], total: int) -> list[int]:
    """Round ideal counts d_l·N_l to integers summing to ``total`` (largest-remainder method)."""
    ideal = [min(d, 1.0) * n for d, n in zip(densities, numels)]
    counts = [min(n, math.floor(x)) for x, n in zip(ideal, numels)]
    by_remainder = sorted(range(len(ideal)), key=lambda i: (counts[i] - ideal[i], i))
    while sum(counts) < total:
        grown = False
        for i in by_remainder:
            if sum(counts) == total:
                break
            if counts[i] < numels[i]:
                counts[i] += 1
                grown = True
        if not grown:
            raise ValueError(f"cannot place {total} weights in {sum(numels)}")
    for i in reversed(by_remainder):  # only reached through float error in Σ d_l·N_l
        if sum(counts) <= total:
            break
        if counts[i] > 0:
            counts[i] -= 1
    return counts


def layer_counts(shapes: Sequence[Sequence[int]], density: float, distribution: str) -> list[int]:
    """Exact per-layer kept-weight counts for ``erk`` or ``uniform``."""
    _check_density(density)
    numels = [math.prod(s) for s in shapes]
    if distribution == "erk":
        densities = erk_densities(shapes, density)
    elif distribution == "uniform":
        densities = [density] * len(shapes)
    else:
        raise ValueError(f"distribution {distribution!r} has no closed-form counts; use one of 'erk', 'uniform'")
    return exact_counts(densities, numels, round(density * sum(numels)))


def initial_masks(
    params: Sequence[MaskableParam],
    density: float,
    distribution: Distribution = "erk",
    init: Init | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Boolean masks, one per parameter, on each parameter's device.

    ``init="random"`` places each layer's count at random positions (from scratch); ``"magnitude"``
    keeps the largest |w| of each layer (the dense parent users bring is usually trained).
    ``distribution="magnitude_global"`` keeps the round(d·N) largest |w| over all layers at once.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    if distribution == "magnitude_global":
        if init not in (None, "magnitude"):
            raise ValueError("distribution 'magnitude_global' places weights by magnitude; init must be 'magnitude'")
        return _global_magnitude_masks(params, density)
    init = init or "random"
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    counts = layer_counts([p.shape for p in params], density, distribution)
    if init == "magnitude":
        return [_top_k_mask(p.param.detach().abs(), k) for p, k in zip(params, counts)]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return [_random_mask(p.param, k, gen) for p, k in zip(params, counts)]


def _check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    flat[torch.topk(scores.flatten(), k, sorted=False).indices] = True
    return flat.view(scores.shape)


def _random_mask(param: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    # Drawn on the CPU generator so the same seed gives the same mask on every device.
    flat = torch.zeros(param.numel(), dtype=torch.bool)
    flat[torch.randperm(param.numel(), generator=generator)[:k]] = True
    return flat.view(param.shape).to(param.device)


def _global_magnitude_masks(params: Sequence[MaskableParam], density: float) -> list[torch.Tensor]:
    _check_density(density)
    device = params[0].param.device
    scores = torch.cat([p.param.detach().abs().flatten().to(device, torch.float32) for p in params])
    keep = torch.zeros(scores.numel(), dtype=torch.bool, device=device)
    keep[torch.topk(scores, round(density * scores.numel()), sorted=False).indices] = True
    masks, offset = [], 0
    for p in params:
        masks.append(keep[offset : offset + p.numel].view(p.shape).to(p.param.device))
        offset += p.numel
    return masks
