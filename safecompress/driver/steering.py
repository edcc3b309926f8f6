"""Steering (METHOD.md §3.5): a red test switches on the remedy it declares; its weight doubles while
the test stays red and halves while it is green, until it falls below a quarter of its base weight.

Performance tests (``@safecompress.mark.performance``) guard the task: while one of them is red on
the surviving candidate, no remedy is switched on or escalated, and remedies that are on are halved,
because a defense that costs the accuracy budget is not a fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

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
