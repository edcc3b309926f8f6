"""Which model ships (METHOD.md §3.7): the best *passing* model the cheap tests judged anywhere in
training, the best red one only when none passed.

A point about to ship is also *validated* when the suite has ``validation`` tests (stronger evidence
than the in-loop audit, on rows the gate does not score; docs/driver.md): their reports replace the
in-loop targets that serve the same requirement, and a point they reject loses its place as the best
passing one, so the next contender (or the next attempt) is tried instead.

Every judged point (each update's survivor after its retraining segment, each final check, in every
attempt) is a contender, kept cheaply: weights and masks of the best passing and the best red point
so far. Within each class the ``safecompress_select_candidate`` hook decides (ties: the later point),
so a user's rule ranks checkpoints exactly as it ranks candidates. What every point measured is kept
as a summary, so the report can show the utility/leakage trade-off the run saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from safecompress.driver.selection import Candidate, score_candidate
from safecompress.fsutil import json_safe
from safecompress.runner.reports import TestReport

Select = Callable[[list[Candidate], str], Candidate]


@dataclass
class JudgedPoint:
    """A checkpoint the cheap tests judged: where it was, what they said, and how to get it back."""

    candidate: Candidate
    step: int
    kind: str  # "segment" (an update's survivor after retraining) or "final-check"
    attempt: int
    weights: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    validation: Optional[list[TestReport]] = None  # the validation tests' reports, once validated

    @property
    def evidence(self) -> list[TestReport]:
        """What decides the point: the in-loop reports, where validation judged a requirement its
        reports instead of the in-loop targets that serve the same one."""
        if not self.validation:
            return list(self.candidate.reports)
        judged = {r.serves for r in self.validation if r.serves}
        return [r for r in self.candidate.reports if r.serves is None or r.serves not in judged] + list(self.validation)

    @property
    def passed(self) -> bool:
        return not any(r.red for r in self.evidence)

    def ranked(self, lambda_: float) -> Candidate:
        """The point as selection compares it: a candidate of its deciding evidence."""
        if not self.validation:
            return self.candidate
        candidate = Candidate(self.candidate.name, None, self.evidence)
        score_candidate(candidate, lambda_)
        return candidate

    @property
    def label(self) -> str:
        return f"attempt {self.attempt} step {self.step} ({self.kind})"

    def summary(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "attempt": self.attempt,
            "step": self.step,
            "kind": self.kind,
            "passed": self.passed,
            "red_tests": [r.nodeid for r in self.evidence if r.red],
            "validation": None if self.validation is None else {r.nodeid: {"outcome": r.outcome, "margin": r.margin, "metrics": r.metrics} for r in self.validation},
            "utility": c.utility,
            "risk": c.risk,
            "score": c.score,
            "margins": {r.nodeid: r.margin for r in c.reports},
            "metrics": c.metrics(),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "attempt": self.attempt,
            "name": self.candidate.name,
            "reports": json.dumps(json_safe([r.to_dict() for r in self.candidate.reports])),
            "weights": self.weights,
            "masks": self.masks,
            "validation": None if self.validation is None else json.dumps(json_safe([r.to_dict() for r in self.validation])),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], lambda_: float) -> "JudgedPoint":
        reports = json.loads(state["reports"])
        candidate = Candidate(state["name"], None, [TestReport.from_dict(r) for r in reports])
        score_candidate(candidate, lambda_)
        validation = state.get("validation")  # absent in checkpoints written before validation
        validated = None if validation is None else [TestReport.from_dict(r) for r in json.loads(validation)]
        return cls(candidate, int(state["step"]), state["kind"], int(state["attempt"]), dict(state["weights"]), dict(state["masks"]), validated)


class ShippingRecord:
    """The best passing and the best red judged point so far, and a summary of every point."""

    def __init__(self, select: Select, lambda_: float = 1.0) -> None:
        self.select = select
        self.lambda_ = lambda_
        self.best_passing: Optional[JudgedPoint] = None
        self.best_red: Optional[JudgedPoint] = None
        self.seen: list[dict[str, Any]] = []

    def consider(self, point: JudgedPoint) -> str:
        """Keep ``point`` if it beats the best of its class; returns the decision log's ``kept`` line."""
        self.seen.append(point.summary())
        kept, incumbent = self._place(point)
        shipped = self.shipped
        colour = "passing" if point.passed else "red"
        verdict = f"kept as the best {colour} checkpoint" if kept is point else f"the best {colour} checkpoint stays {incumbent.label}"  # type: ignore[union-attr]
        return f"{verdict}; would ship {shipped.label if shipped else 'nothing yet'}"

    def _place(self, point: JudgedPoint) -> tuple[JudgedPoint, Optional[JudgedPoint]]:
        """Put ``point`` in its class if it beats the incumbent there; returns (kept, incumbent)."""
        incumbent = self.best_passing if point.passed else self.best_red
        contenders = [point] if incumbent is None else [point, incumbent]
        candidates = [p.ranked(self.lambda_) for p in contenders]
        chosen = self.select(candidates, "checkpoint")
        kept = contenders[next(i for i, c in enumerate(candidates) if c is chosen)]
        if point.passed:
            self.best_passing = kept
        else:
            self.best_red = kept
        return kept, incumbent

    def validate(self, point: JudgedPoint, reports: list[TestReport]) -> str:
        """Record the validation of ``point`` (the one about to ship) and move it to the class its
        evidence now puts it in; returns the decision log's line."""
        point.validation = list(reports)
        if self.best_passing is point:
            self.best_passing = None
        if self.best_red is point:
            self.best_red = None
        self._place(point)
        verdict = "confirmed" if point.passed else "rejected (" + ", ".join(r.nodeid for r in point.validation if r.red) + ")"
        shipped = self.shipped
        return f"validation {verdict} {point.label}; would ship {shipped.label if shipped else 'nothing yet'}"

    @property
    def shipped(self) -> Optional[JudgedPoint]:
        """Passing first; the best red point only when nothing passed."""
        return self.best_passing or self.best_red

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_passing": None if self.best_passing is None else self.best_passing.to_state(),
            "best_red": None if self.best_red is None else self.best_red.to_state(),
            "seen": json.dumps(json_safe(self.seen)),
        }

    def load_state_dict(self, state: dict[str, Any], lambda_: float) -> None:
        self.best_passing = None if state["best_passing"] is None else JudgedPoint.from_state(state["best_passing"], lambda_)
        self.best_red = None if state["best_red"] is None else JudgedPoint.from_state(state["best_red"], lambda_)
        self.seen = json.loads(state["seen"])


def load_point(model: torch.nn.Module, engine: Any, point: JudgedPoint) -> None:
    """Put a judged checkpoint's weights and masks in ``model`` and its sparse ``engine``."""
    model.load_state_dict(point.weights)
    state = engine.state_dict()
    state["masks"] = point.masks
    engine.load_state_dict(state)
