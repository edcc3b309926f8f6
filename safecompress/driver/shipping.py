"""Which model ships (METHOD.md §3.7): the best *passing* model the cheap tests judged anywhere in
training, the best red one only when none passed.

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

    @property
    def passed(self) -> bool:
        return not self.candidate.red_tests()

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
            "red_tests": c.red_tests(),
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
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], lambda_: float) -> "JudgedPoint":
        reports = json.loads(state["reports"])
        candidate = Candidate(state["name"], None, [TestReport.from_dict(r) for r in reports])
        score_candidate(candidate, lambda_)
        return cls(candidate, int(state["step"]), state["kind"], int(state["attempt"]), dict(state["weights"]), dict(state["masks"]))


class ShippingRecord:
    """The best passing and the best red judged point so far, and a summary of every point."""

    def __init__(self, select: Select) -> None:
        self.select = select
        self.best_passing: Optional[JudgedPoint] = None
        self.best_red: Optional[JudgedPoint] = None
        self.seen: list[dict[str, Any]] = []

    def consider(self, point: JudgedPoint) -> str:
        """Keep ``point`` if it beats the best of its class; returns the decision log's ``kept`` line."""
        self.seen.append(point.summary())
        incumbent = self.best_passing if point.passed else self.best_red
        contenders = [point] if incumbent is None else [point, incumbent]
        chosen = self.select([p.candidate for p in contenders], "checkpoint")
        kept = point if chosen is point.candidate else incumbent
        if point.passed:
            self.best_passing = kept
        else:
            self.best_red = kept
        shipped = self.shipped
        colour = "passing" if point.passed else "red"
        verdict = f"kept as the best {colour} checkpoint" if kept is point else f"the best {colour} checkpoint stays {incumbent.label}"  # type: ignore[union-attr]
        return f"{verdict}; would ship {shipped.label if shipped else 'nothing yet'}"

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
