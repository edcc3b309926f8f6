"""A cost budget for one compression run (``--budget B``): at most B times the work of training alone.

Work is counted, not timed, so the same seed plans the same run on every machine:

- training is one unit per row and step (``total_steps × batch_size`` rows: the budget's 1×);
- a judged model costs the rows one judgement feeds the model (counted once, on a copy of the
  parent, by a forward hook: that judgement is counted too) times :data:`INFERENCE_ROW_COST`;
- a probe step costs a batch of rows;
- a remedy costs its declared ``step_cost(options)`` (extra work of a training step while it is on,
  as a fraction of a plain step) for the whole run: the plan assumes each ladder may climb to its
  costliest rung and stay on.

Every attempt may run, so the plan counts them all. It trims, in this order, until the predicted
work fits: the attempts beyond the first; the remedies the budget cannot carry even with the
fewest judged models (a test whose whole ladder is cut steers nothing, and the report says so);
the candidates, down to one (which is then neither probed nor judged: there is nothing to choose
between); the final checks, halved down to none. What was trimmed, and the predicted ratio, go in
the report; the benchmark measures the real one.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from safecompress.driver.settings import CompressSettings

# The cost of one judged row against one training row (forward, backward, optimizer step). A
# forward pass is a third of a step's arithmetic, but the judgement's small kernels and the attacks
# run less efficiently: in the loop the SmallCNN's judgements measured 0.53 training rows per row
# on 2 CPU threads and 0.565 on 1 (`bench compress --arms plain-dst,sc-budget`). Rounded up.
INFERENCE_ROW_COST = 0.6

Ladder = Sequence[tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Work:
    """What one run's work is counted in: rows trained, and rows one judgement feeds the model."""

    train_rows: int
    judged_rows: int
    batch_size: int


@dataclass
class BudgetPlan:
    """What ``--budget`` decided: the predicted work ratio, what it trimmed, and whether it fits."""

    budget: float
    predicted: float
    fits: bool
    changed: dict[str, Any] = field(default_factory=dict)  # setting -> the value the plan chose
    excluded_remedies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    work: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def count_judged_rows(evaluate: Callable[[nn.Module, str], Any], parent: nn.Module) -> int:
    """The rows one judgement feeds the model, counted on a copy of ``parent`` (its own weights and
    buffers stay untouched) by a forward pre-hook: a tensor's first dimension, or a dict's first
    tensor's (a transformers batch)."""
    probe = copy.deepcopy(parent)
    rows = 0

    def count(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        nonlocal rows
        first = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(first, Mapping):
            first = next((v for v in first.values() if isinstance(v, torch.Tensor)), None)
        if isinstance(first, torch.Tensor) and first.dim() > 0:
            rows += int(first.shape[0])

    handle = probe.register_forward_pre_hook(count, with_kwargs=True)
    try:
        evaluate(probe, "budget: counting the rows of one judgement")
    finally:
        handle.remove()
    return rows


def judged_models(settings: CompressSettings, updates: int) -> int:
    """Judgements per attempt: each update's checkpoint, its candidates when there are several, the final checks."""
    per_update = 1 + (settings.candidates if settings.candidates > 1 else 0)
    return updates * per_update + settings.final_checks


def predicted_ratio(settings: CompressSettings, updates: int, work: Work, remedy_cost: float) -> float:
    """The run's predicted work over training alone, every attempt counted, and the judgement that
    counted the rows."""
    judgement = work.judged_rows * INFERENCE_ROW_COST
    probes = updates * settings.candidates * settings.probe_steps * work.batch_size if settings.candidates > 1 else 0
    per_attempt = 1.0 + remedy_cost + (judged_models(settings, updates) * judgement + probes) / max(work.train_rows, 1)
    return settings.attempts * per_attempt + judgement / max(work.train_rows, 1)


def remedy_costs(ladders: Sequence[Ladder], factories: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """Each declared remedy's step cost (None: its factory declares none)."""
    costs: dict[str, Optional[float]] = {}
    for ladder in ladders:
        for name, options in ladder:
            step_cost = getattr(factories.get(name), "step_cost", None)
            if step_cost is None:
                costs[name] = None
                continue
            cost = float(step_cost(dict(options)))  # a remedy declared twice, with other options: its costlier use
            costs[name] = max(cost, costs.get(name) or 0.0)
    return costs


def ladders_cost(ladders: Sequence[Ladder], costs: Mapping[str, Optional[float]], excluded: set[str]) -> float:
    """The worst case: every ladder at its costliest kept rung, on for the whole run."""
    total = 0.0
    for ladder in ladders:
        kept = [cost for name, _ in ladder if name not in excluded and (cost := costs.get(name)) is not None]
        total += max(kept, default=0.0)
    return total


def plan_budget(settings: CompressSettings, work: Work, updates: int, ladders: Sequence[Ladder], factories: Mapping[str, Any]) -> tuple[CompressSettings, BudgetPlan]:
    """The settings trimmed to ``settings.budget`` (see the module docstring), and the plan."""
    budget = float(settings.budget or 0.0)
    planned = settings
    notes: list[str] = []

    def ratio(candidate: CompressSettings, excluded: set[str]) -> float:
        return predicted_ratio(candidate, updates, work, ladders_cost(ladders, costs, excluded) if candidate.remedies else 0.0)

    costs = remedy_costs(ladders, factories)
    excluded: set[str] = set()
    if ratio(planned, excluded) > budget and planned.attempts > 1:
        notes.append(f"{planned.attempts} attempts → 1: every attempt repeats the whole run")
        planned = dataclasses.replace(planned, attempts=1)
    leanest = dataclasses.replace(planned, candidates=1, final_checks=0)
    spare = budget - predicted_ratio(leanest, updates, work, 0.0)
    for name, cost in sorted(costs.items()):
        if cost is None:
            excluded.add(name)
            notes.append(f"remedy {name} left out: it declares no step_cost, so no budget can count it")
        elif planned.remedies and cost > spare:
            excluded.add(name)
            notes.append(f"remedy {name} left out: it adds {cost:g}× a training step while on, the budget has {max(spare, 0.0):.2f}× to spare")
    while ratio(planned, excluded) > budget and planned.candidates > 1:
        fewer = planned.candidates - 1
        notes.append(f"{planned.candidates} candidates → {fewer}" + (": one candidate is neither probed nor judged" if fewer == 1 else ""))
        planned = dataclasses.replace(planned, candidates=fewer)
    while ratio(planned, excluded) > budget and planned.final_checks > 0:
        fewer = planned.final_checks // 2
        notes.append(f"{planned.final_checks} final checks → {fewer}")
        planned = dataclasses.replace(planned, final_checks=fewer)
    predicted = ratio(planned, excluded)
    fits = predicted <= budget
    if not fits:
        notes.append(f"the leanest run predicts {predicted:.2f}× training, over the budget of {budget:g}×: it runs as planned, over budget")
    changed = {f.name: getattr(planned, f.name) for f in dataclasses.fields(planned) if getattr(planned, f.name) != getattr(settings, f.name)}
    plan = BudgetPlan(
        budget=budget,
        predicted=round(predicted, 4),
        fits=fits,
        changed=changed,
        excluded_remedies=sorted(excluded),
        notes=notes,
        work={"train_rows": work.train_rows, "judged_rows": work.judged_rows, "batch_size": work.batch_size, "updates": updates, "judged_models_per_attempt": judged_models(planned, updates)},
    )
    return planned, plan
