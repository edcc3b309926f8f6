"""Steering (METHOD.md §3.5): a red test switches on the remedy it declares; its weight doubles while
the test stays red and halves while it is green, until it falls below a quarter of its base weight.

Performance tests (``@safecompress.mark.performance``) guard the task: while one of them is red on
the surviving candidate, no remedy is switched on or escalated, and remedies that are on are halved,
because a defense that costs the accuracy budget is not a fix.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from safecompress.errors import UsageError
from safecompress.remedies import RemedyContext
from safecompress.runner.reports import TestReport

PERFORMANCE_MARK = "performance"


@dataclass
class RemedyState:
    weight: float = 0.0
    base: float = 0.0
    cap: float = 0.0
    red_streak: int = 0
    history: list[float] = field(default_factory=list)


def decayed(weight: float, base: float) -> float:
    """Half the weight, or off once that falls below a quarter of the base weight."""
    halved = weight / 2.0
    return 0.0 if halved < base / 4.0 else halved


class RemedyController:
    """Turns the winner's test outcomes into remedy weights; plain data, so it checkpoints."""

    def __init__(self) -> None:
        self.states: dict[str, RemedyState] = {}

    def observe(self, reports: Iterable[TestReport], bases: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
        """Update weights from one update's reports; ``bases`` gives each remedy's (base, cap) weight.

        Returns what changed and why, for the decision log.
        """
        reports = list(reports)
        red: dict[str, bool] = {}
        for report in reports:
            if report.remedy is not None and report.outcome not in ("skipped",):
                red[report.remedy] = red.get(report.remedy, False) or report.red
        guard = sorted(r.nodeid for r in reports if PERFORMANCE_MARK in r.markers and r.red)
        decisions: dict[str, dict[str, Any]] = {}
        for name, is_red in sorted(red.items()):
            base, cap = bases[name]
            state = self.states.setdefault(name, RemedyState(base=base, cap=cap))
            before = state.weight
            if guard:
                state.red_streak = state.red_streak + 1 if is_red else 0
                state.weight = decayed(before, base)
                why = ("held off" if before == 0.0 else "backed off") + f": performance test red ({', '.join(guard)})"
            elif is_red:
                state.red_streak += 1
                state.weight = base if before == 0.0 else min(2.0 * before, cap)
                why = "switched on: test red" if before == 0.0 else ("doubled: still red" if state.weight > before else "at cap: still red")
            else:
                state.red_streak = 0
                state.weight = decayed(before, base)
                why = "off" if before == 0.0 else ("switched off: green" if state.weight == 0.0 else "halved: green")
            state.history.append(state.weight)
            decisions[name] = {"red": is_red, "guard_red": bool(guard), "weight_before": before, "weight": state.weight, "why": why}
        return decisions

    def weights(self) -> dict[str, float]:
        return {name: state.weight for name, state in self.states.items()}

    def state_dict(self) -> dict[str, Any]:
        return {name: vars(state).copy() for name, state in self.states.items()}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.states = {name: RemedyState(**{**values, "history": list(values["history"])}) for name, values in data.items()}


class Steering:
    """The remedies of one run: built from the registry when a test first declares them, weighted by
    the :class:`RemedyController`, added to the training loss, and scaling the learning rate
    (``lr_scale(weight)``, optional in the Remedy protocol: a min-max remedy slows the classifier)."""

    def __init__(self, factories: dict[str, Callable[[RemedyContext], Any]], make_context: Callable[[dict[str, Any]], RemedyContext], enabled: bool = True) -> None:
        self.factories = factories
        self.make_context = make_context  # options -> context (data, device, seed are the run's)
        self.enabled = enabled
        self.controller = RemedyController()
        self.remedies: dict[str, Any] = {}
        self.options: dict[str, dict[str, Any]] = {}

    def add_losses(self, total: Any, model: Any, inputs: Any, logits: Any, labels: Any) -> Any:
        """``total`` plus each active remedy's weighted loss term, in registration order."""
        for name, weight in self.controller.weights().items():
            if weight > 0 and name in self.remedies:
                total = total + weight * self.remedies[name].loss(model, inputs, logits, labels)
        return total

    def steer(self, reports: list[TestReport]) -> dict[str, Any]:
        """Let the winner's red tests switch their remedies on (the decision log's ``remedies``)."""
        if not self.enabled:
            return {}
        bases: dict[str, tuple[float, float]] = {}
        for report in reports:
            if report.remedy is None:
                continue
            if report.remedy not in self.factories:
                raise UsageError(f"{report.nodeid} declares remedy {report.remedy!r}, which no plugin provides; known: {', '.join(sorted(self.factories))}")
            self.options.setdefault(report.remedy, dict(report.remedy_options))
            remedy = self.remedy(report.remedy)
            bases[report.remedy] = (remedy.base_weight, remedy.max_weight)
        return self.controller.observe(reports, bases)

    def remedy(self, name: str) -> Any:
        if name not in self.remedies:
            self.remedies[name] = self.factories[name](self.make_context(self.options.get(name, {})))
        return self.remedies[name]

    def lr_factor(self) -> float:
        """The product of the active remedies' learning-rate factors."""
        factor = 1.0
        for name, weight in self.controller.weights().items():
            remedy = self.remedies.get(name)
            if weight > 0 and remedy is not None and hasattr(remedy, "lr_scale"):
                factor *= float(remedy.lr_scale(weight))
        return factor

    def weights(self) -> dict[str, float]:
        return self.controller.weights()

    def snapshot(self) -> dict[str, Any]:
        """The remedies' own states (adversaries train too): probes restore them afterwards."""
        return {name: copy.deepcopy(remedy.state_dict()) for name, remedy in self.remedies.items()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, state in snapshot.items():
            self.remedies[name].load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "remedy_options": json.dumps(self.options, sort_keys=True),
            "remedies": {name: remedy.state_dict() for name, remedy in self.remedies.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.options = json.loads(state["remedy_options"])
        self.remedies = {}
        for name, remedy_state in state["remedies"].items():
            self.remedy(name).load_state_dict(remedy_state)
