"""What a topology update proposes and how its outcome is explained (METHOD.md §3.1, §3.4, §3.7).

Pure helpers of the loop: the N candidate growth strategies of an update, the steps of the final
phase where the cheap tests keep judging checkpoints, and the one-line reasons the decision log gives.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from safecompress.driver.selection import Candidate
from safecompress.driver.settings import CompressSettings
from safecompress.errors import UsageError
from safecompress.plugins import collect_registry
from safecompress.sparse import GrowthRule, GrowthSpec, PruneSchedule, SparseEngine

PRUNE_FACTORS = (1.0, 1.5, 0.5, 1.0, 2.0, 0.75)


def candidate_specs(settings: CompressSettings, prune_fraction: float, update: int) -> list[GrowthSpec]:
    """N growth strategies; with ``vary_prune`` they also replace different shares of the weights,
    because candidates differing only in growth rule are nearly indistinguishable to a test."""
    specs = []
    strategies = list(settings.strategies)
    for i in range(settings.candidates):
        growth, _, seed_text = strategies[i % len(strategies)].partition(":")
        seed = (int(seed_text) if seed_text else None) if i < len(strategies) else i
        fraction = None
        if settings.vary_prune:
            fraction = min(1.0, prune_fraction * PRUNE_FACTORS[i % len(PRUNE_FACTORS)])
        spec = GrowthSpec(growth, seed=seed, prune_fraction=fraction)  # type: ignore[arg-type]
        specs.append(GrowthSpec(spec.growth, spec.seed, spec.prune_fraction, name=f"{spec.label}#{i}"))
    return specs


def growth_registry(pm: Any) -> dict[str, GrowthRule]:
    """The growth rules built-ins and plugins register through ``safecompress_register_growth_rules``."""
    return collect_registry(pm, "safecompress_register_growth_rules")


def check_strategies(settings: CompressSettings, registry: Mapping[str, GrowthRule]) -> None:
    """Every candidate strategy names a registered growth rule (checked before any training)."""
    for text in settings.strategies:
        if text.partition(":")[0] not in registry:
            raise UsageError(f"unknown candidate strategy {text!r}: the growth rule is one of {', '.join(sorted(registry))}")


def sparse_engine(model: Any, optimizer: Any, settings: CompressSettings, schedule: PruneSchedule, registry: Mapping[str, GrowthRule]) -> SparseEngine:
    """The run's sparse engine: updates are the loop's to decide (``auto_update=False``), and the
    growth rules of every candidate strategy keep the statistics they need (gradients, momentum)."""
    check_strategies(settings, registry)
    growth_rules = {s.partition(":")[0] for s in settings.strategies}
    return SparseEngine(
        model,
        optimizer,
        settings.density,
        distribution=settings.distribution,  # type: ignore[arg-type]
        init=settings.init,  # type: ignore[arg-type]
        schedule=schedule,
        seed=settings.seed,
        auto_update=False,
        extra_growth=tuple(sorted(growth_rules - {"random"})),
        growth_rules=registry,
        include=settings.include_patterns,
        exclude=settings.exclude,
        embeddings=settings.embeddings,
    )


def final_check_steps(schedule: PruneSchedule, count: int) -> frozenset[int]:
    """``count`` steps spread evenly over the final phase (after the last topology update, or over all
    of training when there is none), the last of them the final step."""
    updates = schedule.update_steps()
    start = updates[-1] if updates else 0
    span = schedule.total_steps - start
    if count <= 0 or span <= 0:
        return frozenset()
    return frozenset(start + math.ceil(span * k / count) for k in range(1, count + 1))


def explain(winner: Candidate, candidates: list[Candidate]) -> str:
    if len(candidates) == 1:
        return "the only candidate (not probed or judged: there is nothing to choose between)"
    fewest = min(c.failures for c in candidates)
    tied = [c for c in candidates if c.failures == fewest]
    if len(tied) == 1:
        return f"only candidate with severity-weighted failures {fewest:g}"
    return f"best score among {len(tied)} candidates with failures {fewest:g}: utility {winner.utility:.4f} − λ·risk {winner.risk:+.4f} = {winner.score:.4f}"
