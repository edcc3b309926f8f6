"""Steering (METHOD.md §3.5): a red test switches on the remedy it declares; its weight doubles while
the test stays red and halves while it is green, until it falls below a quarter of its base weight.

It acts in time: a test red on the dense parent switches its remedy on before the first step (the
baseline is a decision too); a green test whose margin, extrapolated from its last two decisions,
would cross its limit before the next decision switches it on now; a remedy at its cap that has not
moved its test's margin by ``stall_gain`` over two decisions hands over to the next rung of the
ladder the test declares (``@safecompress.mark.remedy("a", "b")``). Every decision logs each rung's
measured effect: the change of its test's margin since the previous decision while it was on.

Performance tests (``@safecompress.mark.performance``) guard the task: while one of them is red on
the model judged, no remedy is switched on or escalated, and remedies that are on are halved,
because a defense that costs the accuracy budget is not a fix.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from safecompress.driver.selection import PERFORMANCE_MARK
from safecompress.errors import UsageError
from safecompress.remedies import RemedyContext
from safecompress.runner.reports import TestReport

DEFAULT_STALL_GAIN = 0.005  # margin a rung at its cap must gain over two decisions to keep its place
BRACKET_DECISIONS = 3  # how many decisions a measured bracket side stays valid


@dataclass
class RemedyState:
    """One remedy's weight, and the bracket its tests have measured: ``too_weak`` is the highest weight
    under which its safety test was still red, ``too_strong`` the lowest under which the performance
    guard went red (0 and inf: not known)."""

    weight: float = 0.0
    base: float = 0.0
    cap: float = 0.0
    red_streak: int = 0
    history: list[float] = field(default_factory=list)
    too_weak: float = 0.0
    too_strong: float = float("inf")
    weak_seen: int = 0  # the decision (len(history)) at which each side of the bracket was measured
    strong_seen: int = 0

    def expire_bracket(self, now: int) -> None:
        """A side measured more than ``BRACKET_DECISIONS`` decisions ago is dropped: the model has
        trained on, and the weight it needs has moved (a stale bracket pins the weight: measured)."""
        if now - self.weak_seen > BRACKET_DECISIONS:
            self.too_weak = 0.0
        if now - self.strong_seen > BRACKET_DECISIONS:
            self.too_strong = float("inf")


@dataclass
class LadderState:
    """Where one declared ladder stands: its active rung and its tests' margin at each decision."""

    rungs: list[str]
    rung: int = 0
    steps: list[int] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)

    @property
    def active(self) -> str:
        return self.rungs[self.rung]


def decayed(weight: float, base: float) -> float:
    """Half the weight, or off once that falls below a quarter of the base weight."""
    halved = weight / 2.0
    return 0.0 if halved < base / 4.0 else halved


def ladder_key(rungs: Iterable[str]) -> str:
    return " > ".join(rungs)


@dataclass
class SteeringPlan:
    """What an attempt starts with (what earlier attempts learned): weights from step 0 and rungs."""

    weights: dict[str, float] = field(default_factory=dict)
    rungs: dict[str, int] = field(default_factory=dict)  # ladder key -> active rung index

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "rungs": dict(self.rungs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SteeringPlan":
        return cls({k: float(v) for k, v in data.get("weights", {}).items()}, {k: int(v) for k, v in data.get("rungs", {}).items()})


class RemedyController:
    """Turns the judged model's test outcomes into remedy weights; plain data, so it checkpoints."""

    def __init__(self, stall_gain: float = DEFAULT_STALL_GAIN, plan: Optional[SteeringPlan] = None) -> None:
        self.stall_gain = stall_gain
        self.states: dict[str, RemedyState] = {}
        self.ladders: dict[str, LadderState] = {}
        self.plan = plan or SteeringPlan()

    def _state(self, name: str, bases: dict[str, tuple[float, float]]) -> RemedyState:
        if name not in self.states:
            base, cap = bases[name]
            self.states[name] = RemedyState(weight=min(self.plan.weights.get(name, 0.0), cap), base=base, cap=cap)
        return self.states[name]

    def observe(
        self,
        reports: Iterable[TestReport],
        bases: dict[str, tuple[float, float]],
        step: int = 0,
        next_step: Optional[int] = None,
        baseline: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Update weights from one decision's reports at ``step``; ``bases`` gives each remedy's (base,
        cap) weight, ``next_step`` when the next decision comes (for the trend); ``baseline``: the
        reports are the dense parent's, before training (a plan's weights stand unless the guard is red).
        Returns, per remedy, what changed and why, for the decision log."""
        reports = [r for r in reports if r.outcome != "skipped"]
        ladders: dict[str, tuple[list[str], bool, Optional[float]]] = {}
        for report in reports:
            if report.remedy is None:
                continue
            rungs = [name for name, _ in report.ladder]
            key = ladder_key(rungs)
            _, red, margin = ladders.get(key, (rungs, False, None))
            if report.margin is not None:
                margin = report.margin if margin is None else min(margin, report.margin)
            ladders[key] = (rungs, red or report.red, margin)
        guard = sorted(r.nodeid for r in reports if PERFORMANCE_MARK in r.markers and r.red)
        decisions: dict[str, dict[str, Any]] = {}
        for key, (rungs, is_red, margin) in sorted(ladders.items()):
            ladder = self.ladders.setdefault(key, LadderState(rungs, rung=min(self.plan.rungs.get(key, 0), len(rungs) - 1)))
            previous = ladder.margins[-1] if ladder.margins else None
            if margin is not None:
                ladder.steps.append(step)
                ladder.margins.append(margin)
            for index, name in enumerate(rungs):
                state = self._state(name, bases)
                before = state.weight
                effect = None if (margin is None or previous is None or before == 0.0) else margin - previous
                if index == ladder.rung and baseline and before > 0 and not is_red and not guard:
                    why = "on from step 0: what an earlier attempt learned"
                elif index == ladder.rung:
                    why = self._steer_active(ladder, state, is_red, margin, guard, step, next_step)
                else:
                    state.weight = decayed(before, state.base) if before > 0 else 0.0
                    why = "off" if before == 0.0 else "decaying: not the active rung"
                state.red_streak = state.red_streak + 1 if is_red else 0
                state.history.append(state.weight)
                decisions[name] = {
                    "ladder": key,
                    "rung": index,
                    "active": index == ladder.rung,
                    "red": is_red,
                    "guard_red": bool(guard),
                    "margin": margin,
                    "effect": effect,
                    "weight_before": before,
                    "weight": state.weight,
                    "why": why,
                }
            self._hand_over_if_stalled(ladder, decisions, bases)
        return decisions

    def _steer_active(self, ladder: LadderState, state: RemedyState, is_red: bool, margin: Optional[float], guard: list[str], step: int, next_step: Optional[int]) -> str:
        """Double while red, halve while green or while the guard is red; once the tests have bracketed
        the weight (red safety test below, red guard above), bisect inside the bracket instead: a
        doubling/halving controller alone swings between a weight that costs the accuracy budget and
        one that leaks (measured on the demo), and never tries the weight in between."""
        before = state.weight
        now = len(state.history)
        state.expire_bracket(now)
        if guard:
            if before > 0:
                state.too_strong, state.strong_seen = min(state.too_strong, before), now
                if state.too_weak >= state.too_strong:  # the model moved on: the old bracket is stale
                    state.too_weak = 0.0
            state.weight = decayed(before, state.base)
            if 0 < state.too_weak < before and state.weight < state.too_weak:
                state.weight = (state.too_weak + before) / 2
                return f"eased back to {state.weight:g}, between {state.too_weak:g} (leaked) and {before:g}: performance test red ({', '.join(guard)})"
            return ("held off" if before == 0.0 else "backed off") + f": performance test red ({', '.join(guard)})"
        if is_red:
            if before > 0:
                state.too_weak, state.weak_seen = max(state.too_weak, before), now
                if state.too_weak >= state.too_strong:
                    state.too_strong = float("inf")
            state.weight = state.base if before == 0.0 else min(2.0 * before, state.cap)
            if before > 0 and state.weight >= state.too_strong:
                state.weight = (before + state.too_strong) / 2
                return f"raised to {state.weight:g}, between {before:g} and {state.too_strong:g} (cost accuracy): still red"
            return "switched on: test red" if before == 0.0 else ("doubled: still red" if state.weight > before else "at cap: still red")
        predicted = self.predicted_margin(ladder, step, next_step)
        if predicted is not None and predicted < 0:
            state.weight = max(before, state.base)
            return f"{'switched on' if before == 0.0 else 'held'}: green, but the margin {margin:+.4f} is heading for {predicted:+.4f} by the next decision"
        if before > 0 and state.too_weak >= before:  # green where it was red before: the bracket is stale
            state.too_weak = 0.0
        state.weight = decayed(before, state.base)
        if 0 < state.too_weak < before and state.weight < state.too_weak:
            state.weight = (state.too_weak + before) / 2
            return f"eased back to {state.weight:g}, between {state.too_weak:g} (leaked) and {before:g}: green"
        return "off" if before == 0.0 else ("switched off: green" if state.weight == 0.0 else "halved: green")

    @staticmethod
    def predicted_margin(ladder: LadderState, step: int, next_step: Optional[int]) -> Optional[float]:
        """The margin at ``next_step`` on the line through the last two decisions (None: too few)."""
        if next_step is None or len(ladder.margins) < 2 or ladder.steps[-1] != step or ladder.steps[-2] >= step:
            return None
        slope = (ladder.margins[-1] - ladder.margins[-2]) / (ladder.steps[-1] - ladder.steps[-2])
        return ladder.margins[-1] + slope * (next_step - step)

    def _hand_over_if_stalled(self, ladder: LadderState, decisions: dict[str, dict[str, Any]], bases: dict[str, tuple[float, float]]) -> None:
        """A red active rung that sat at its cap while its margin gained less than ``stall_gain`` over
        the last two decisions gives way to the next rung, which starts at its base weight."""
        if ladder.rung + 1 >= len(ladder.rungs) or len(ladder.margins) < 3:
            return
        name = ladder.active
        state, entry = self.states[name], decisions[name]
        at_cap = len(state.history) >= 2 and state.history[-2] >= state.cap
        gained = ladder.margins[-1] - ladder.margins[-3]
        if not (entry["red"] and not entry["guard_red"] and at_cap and gained < self.stall_gain):
            return
        state.weight = 0.0
        state.history[-1] = 0.0
        ladder.rung += 1
        successor = self._state(ladder.active, bases)
        successor.weight = max(successor.weight, successor.base)
        successor.history[-1:] = [successor.weight]
        entry.update(weight=0.0, active=False, why=f"stalled at cap (margin {gained:+.4f} over two decisions < {self.stall_gain:g}): handed over to {ladder.active}")
        decisions[ladder.active].update(weight=successor.weight, active=True, why=f"switched on: next rung after {name} stalled")

    def weights(self) -> dict[str, float]:
        return {name: state.weight for name, state in self.states.items()}

    def learned_plan(self) -> SteeringPlan:
        """What a next attempt starts with: every remedy that was ever on, from step 0, at the highest
        weight it reached (at least twice its base, within its cap), and each ladder's rung."""
        weights = {}
        for name, state in self.states.items():
            reached = max(state.history, default=0.0)
            if reached > 0:
                weights[name] = min(max(reached, 2.0 * state.base), state.cap)
        for ladder in self.ladders.values():  # a rung that stalled is not restarted
            for name in ladder.rungs[: ladder.rung]:
                weights.pop(name, None)
        return SteeringPlan(weights, {key: ladder.rung for key, ladder in self.ladders.items()})

    def state_dict(self) -> dict[str, Any]:
        return {
            "states": {name: vars(state).copy() for name, state in self.states.items()},
            "ladders": {key: {"rungs": list(state.rungs), "rung": state.rung, "steps": list(state.steps), "margins": list(state.margins)} for key, state in self.ladders.items()},
            "plan": self.plan.to_dict(),
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.states = {name: RemedyState(**{**values, "history": list(values["history"])}) for name, values in data["states"].items()}
        self.ladders = {key: LadderState(list(v["rungs"]), int(v["rung"]), [int(x) for x in v["steps"]], [float(x) for x in v["margins"]]) for key, v in data["ladders"].items()}
        self.plan = SteeringPlan.from_dict(data["plan"])


class Steering:
    """The remedies of one run: built from the registry when a test first declares them, weighted by
    the :class:`RemedyController`, added to the training loss, and scaling the learning rate
    (``lr_scale(weight)``, optional in the Remedy protocol: a min-max remedy slows the classifier)."""

    def __init__(
        self,
        factories: dict[str, Callable[[RemedyContext], Any]],
        make_context: Callable[[dict[str, Any]], RemedyContext],
        enabled: bool = True,
        stall_gain: float = DEFAULT_STALL_GAIN,
        plan: Optional[SteeringPlan] = None,
        excluded: frozenset[str] = frozenset(),
    ) -> None:
        self.factories = factories
        self.excluded = excluded  # remedies never switched on: their rungs are cut from every ladder
        self.make_context = make_context  # options -> context (data, device, seed are the run's)
        self.enabled = enabled
        self.controller = RemedyController(stall_gain, plan)
        self.remedies: dict[str, Any] = {}
        self.options: dict[str, dict[str, Any]] = {}

    def add_losses(self, total: Any, model: Any, inputs: Any, logits: Any, labels: Any) -> Any:
        """``total`` plus each active remedy's weighted loss term, in registration order."""
        for name, weight in self.controller.weights().items():
            if weight > 0 and name in self.remedies:
                total = total + weight * self.remedies[name].loss(model, inputs, logits, labels)
        return total

    def steer(self, reports: list[TestReport], step: int = 0, next_step: Optional[int] = None, baseline: bool = False) -> dict[str, Any]:
        """Let the judged model's tests move their remedies (the decision log's ``remedies``)."""
        if not self.enabled:
            return {}
        reports = [self._without_excluded(report) for report in reports]
        bases: dict[str, tuple[float, float]] = {}
        for report in reports:
            for name, options in report.ladder:
                if name not in self.factories:
                    raise UsageError(f"{report.nodeid} declares remedy {name!r}, which no plugin provides; known: {', '.join(sorted(self.factories))}")
                self.options.setdefault(name, dict(options))
                remedy = self.remedy(name)
                bases[name] = (remedy.base_weight, remedy.max_weight)
        return self.controller.observe(reports, bases, step, next_step, baseline)

    def _without_excluded(self, report: TestReport) -> TestReport:
        """``report`` as steering sees it: its ladder without the excluded rungs (no remedy when none is left)."""
        ladder = report.ladder
        kept = [(name, options) for name, options in ladder if name not in self.excluded]
        if len(kept) == len(ladder):
            return report
        if not kept:
            return dataclasses.replace(report, remedy=None, remedy_options={}, fallback_remedies=[])
        return dataclasses.replace(report, remedy=kept[0][0], remedy_options=kept[0][1], fallback_remedies=[[name, options] for name, options in kept[1:]])

    def fix(self, weights: dict[str, float], options: Optional[dict[str, dict[str, Any]]] = None) -> None:
        """Remedies always on at fixed ``weights`` (with ``options[name]``, else their defaults), never
        steered: a defence switched on by hand, as the benchmark's always-on baselines do."""
        self.enabled = False
        for name, chosen in (options or {}).items():
            self.options[name] = dict(chosen)
        for name, weight in weights.items():
            if name not in self.factories:
                raise UsageError(f"unknown remedy {name!r}; known: {', '.join(sorted(self.factories))}")
            if not (math.isfinite(weight) and weight > 0):
                raise UsageError(f"a fixed remedy weight must be a positive number, got {name}={weight!r}")
            self.remedy(name)
            self.controller.states[name] = RemedyState(weight=float(weight), base=float(weight), cap=float(weight))

    def learned_plan(self) -> SteeringPlan:
        return self.controller.learned_plan()

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
