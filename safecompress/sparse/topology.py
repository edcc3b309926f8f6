"""Prune and regrow, as pure functions on one layer's weight, mask and growth score (METHOD.md §2).

Per layer, an update replaces k = min(⌈p·nnz⌉, N − nnz) weights: the k active weights of smallest |w|
are pruned and k positions that were inactive *before* the update are grown. Grown positions never
include a just-pruned one, so every update explores and per-layer nnz stays exactly constant; the cap
N − nnz only binds for layers denser than about 2/3 (dense ERK layers get k = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch

from safecompress.hookspecs import hookimpl

Growth = str  # a growth rule's name: a built-in ("random", "gradient", "momentum", "unfired") or a plugin's


@dataclass(frozen=True)
class GrowthInputs:
    """What a growth rule may score one layer by. ``signal`` is the statistic the rule ``needs``
    (the dense gradient or the gradient momentum, as kept by the engine), else None."""

    weight: torch.Tensor
    mask: torch.Tensor  # active before the update (never grown into)
    ever_active: torch.Tensor
    generator: torch.Generator  # the only randomness a rule may use: candidates stay reproducible
    signal: torch.Tensor | None = None


@dataclass(frozen=True)
class GrowthRule:
    """Where to regrow: ``score(inputs)`` returns a tensor shaped like the weight; the k inactive
    positions with the largest scores are grown (like ``torch.ao.pruning``'s overridable
    ``update_mask``). ``needs`` names the statistic the engine must keep for it."""

    score: Callable[[GrowthInputs], torch.Tensor]
    needs: Literal["gradient", "momentum"] | None = None


def _random(inputs: GrowthInputs) -> torch.Tensor:
    return random_scores(inputs.weight.shape, inputs.weight.device, inputs.generator)


def _unfired(inputs: GrowthInputs) -> torch.Tensor:
    return unfired_scores(inputs.ever_active, inputs.generator)


def _signal_magnitude(inputs: GrowthInputs) -> torch.Tensor:
    return torch.zeros_like(inputs.weight) if inputs.signal is None else inputs.signal.abs()


#: The built-in rules (METHOD.md §2): SET, RigL, momentum and ITOP's unexplored-first growth.
BUILTIN_GROWTH: dict[str, GrowthRule] = {
    "random": GrowthRule(_random),
    "gradient": GrowthRule(_signal_magnitude, needs="gradient"),
    "momentum": GrowthRule(_signal_magnitude, needs="momentum"),
    "unfired": GrowthRule(_unfired),
}
GROWTH_RULES = tuple(BUILTIN_GROWTH)


@hookimpl(specname="safecompress_register_growth_rules")
def register_builtin_growth(register: Callable[[str, GrowthRule], None]) -> None:
    for name, rule in BUILTIN_GROWTH.items():
        register(name, rule)


@dataclass(frozen=True)
class GrowthSpec:
    """How one candidate is built: a growth rule, an optional seed, an optional prune fraction.

    ``seed`` (random and unfired growth) makes a candidate reproducible on its own; None draws from
    the engine's generator. ``prune_fraction`` overrides the schedule's p(t) for this candidate, so
    candidates can differ in how much they replace, not only in where they grow.
    """

    growth: Growth = "random"
    seed: int | None = None
    prune_fraction: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.growth, str) or not self.growth:
            raise ValueError(f"a growth rule is named by a string, not {self.growth!r}")
        if self.prune_fraction is not None and not 0.0 <= self.prune_fraction <= 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1], got {self.prune_fraction}")

    @property
    def label(self) -> str:
        """A short, stable name for logs and reports."""
        if self.name:
            return self.name
        parts = [self.growth]
        if self.seed is not None:
            parts.append(f"s{self.seed}")
        if self.prune_fraction is not None:
            parts.append(f"p{self.prune_fraction:g}")
        return "-".join(parts)


@dataclass
class CandidateMask:
    """A proposed topology: one boolean mask per maskable parameter, sharing the model's weights.

    ``replaced`` maps each layer to its k (pruned = grown). ``topology_id`` names the topology it was
    proposed from; :meth:`SparseEngine.apply` refuses a candidate proposed from another one.
    """

    spec: GrowthSpec
    masks: dict[str, torch.Tensor]
    prune_fraction: float
    replaced: dict[str, int]
    topology_id: int = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def num_replaced(self) -> int:
        return sum(self.replaced.values())


def replace_count(nnz: int, numel: int, fraction: float) -> int:
    """k = min(⌈p·nnz⌉, N − nnz); the rounding guard keeps 0.5·10 at 5, not 6."""
    return min(math.ceil(round(fraction * nnz, 9)), numel - nnz)


def prune_smallest(weight: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """``mask`` without its k active positions of smallest |w| (a new tensor)."""
    flat = mask.flatten().clone()
    if k == 0:
        return flat.view(mask.shape)
    active = flat.nonzero().squeeze(1)
    magnitudes = weight.detach().flatten()[active].abs()
    flat[active[torch.topk(magnitudes, k, largest=False, sorted=False).indices]] = False
    return flat.view(mask.shape)


def grow_largest(scores: torch.Tensor, before: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean tensor of the k positions with the largest score among those inactive in ``before``."""
    grown = torch.zeros(before.numel(), dtype=torch.bool, device=before.device)
    if k == 0:
        return grown.view(before.shape)
    masked = scores.flatten().float().masked_fill(before.flatten(), -math.inf)
    grown[torch.topk(masked, k, sorted=False).indices] = True
    return grown.view(before.shape)


def random_scores(shape: torch.Size, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """Uniform scores; off the CPU they are drawn on the device, from a seed the CPU generator draws.

    All randomness thus stems from one CPU generator (one state to checkpoint), while an accelerator
    never waits for the CPU to draw millions of numbers.
    """
    if device.type == "cpu":
        return torch.rand(shape, generator=generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.rand(shape, generator=torch.Generator(device).manual_seed(seed), device=device)


def unfired_scores(ever_active: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random scores lifted by 2 where a position was never active: unexplored positions first (ITOP)."""
    return random_scores(ever_active.shape, ever_active.device, generator) + (~ever_active).float() * 2.0
