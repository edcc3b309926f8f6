"""Which model ships (METHOD.md §3.7): the best *passing* model the cheap tests judged anywhere in
training, the best red one only when none passed.

When the suite has ``validation`` tests (stronger evidence than the in-loop audit, on rows the gate
does not score; docs/driver.md), points are also *validated* before one ships: their reports replace
the in-loop targets that serve the same requirement. Because those in-loop targets will not decide,
a *shortlist* keeps the best few points that pass everything else, ranked without them; they are
validated best first, and the first one confirmed ships. A point validation rejects is red.

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

    def provisional(self, validated: frozenset[str], lambda_: float) -> Optional[Candidate]:
        """Before validation: the point ranked without the in-loop targets of the ``validated``
        requirements (validation will judge those), or None when something else is red."""
        reports = [r for r in self.candidate.reports if r.serves is None or r.serves not in validated]
        if any(r.red for r in reports):
            return None
        candidate = Candidate(self.candidate.name, None, reports)
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


SHORTLIST_SIZE = 4  # points kept for validation: a few weights copies, a few inference passes each


class ShippingRecord:
    """The best passing and the best red judged point so far, the best confirmed by validation, the
    shortlist waiting for validation, and a summary of every point. ``validated`` names the
    requirements the suite's validation tests serve (none: no validation, no shortlist)."""

    def __init__(self, select: Select, lambda_: float = 1.0, validated: frozenset[str] = frozenset()) -> None:
        self.select = select
        self.lambda_ = lambda_
        self.validated = frozenset(validated)
        self.best_passing: Optional[JudgedPoint] = None
        self.best_red: Optional[JudgedPoint] = None
        self.confirmed: Optional[JudgedPoint] = None
        self.shortlist: list[JudgedPoint] = []
        self.seen: list[dict[str, Any]] = []

    def consider(self, point: JudgedPoint) -> str:
        """Keep ``point`` if it beats the best of its class; returns the decision log's ``kept`` line."""
        self.seen.append(point.summary())
        if self.validated and point.provisional(self.validated, self.lambda_) is not None:
            self._rank_shortlist([point, *self.shortlist])
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

    def _rank_shortlist(self, points: list[JudgedPoint]) -> None:
        """The best ``SHORTLIST_SIZE`` of ``points`` by the selection rule on their provisional evidence, best first."""
        remaining, ranked = list(points), []
        while remaining and len(ranked) < SHORTLIST_SIZE:
            candidates = [p.provisional(self.validated, self.lambda_) for p in remaining]
            chosen = self.select(candidates, "checkpoint")  # type: ignore[arg-type]
            ranked.append(remaining.pop(next(i for i, c in enumerate(candidates) if c is chosen)))
        self.shortlist = ranked

    def next_to_validate(self) -> Optional[JudgedPoint]:
        """The point validation should judge next: none once one is confirmed; else the best of the
        shortlist, else the point that would ship when validation has not seen it yet."""
        if self.confirmed is not None:
            return None
        if self.shortlist:
            return self.shortlist[0]
        shipped = self.shipped
        return shipped if shipped is not None and shipped.validation is None else None

    def validate(self, point: JudgedPoint, reports: list[TestReport]) -> str:
        """Record the validation of ``point`` and move it to the class its evidence now puts it in
        (confirmed points ship first); returns the decision log's line."""
        point.validation = list(reports)
        self.shortlist = [p for p in self.shortlist if p is not point]
        if self.best_passing is point:
            self.best_passing = None
        if self.best_red is point:
            self.best_red = None
        if point.passed:
            self.confirmed = point if self.confirmed is None else self._best([point, self.confirmed])
        else:
            self._place(point)
        verdict = "confirmed" if point.passed else "rejected (" + ", ".join(r.nodeid for r in point.validation if r.red) + ")"
        shipped = self.shipped
        return f"validation {verdict} {point.label}; would ship {shipped.label if shipped else 'nothing yet'}"

    def _best(self, points: list[JudgedPoint]) -> JudgedPoint:
        candidates = [p.ranked(self.lambda_) for p in points]
        chosen = self.select(candidates, "checkpoint")
        return points[next(i for i, c in enumerate(candidates) if c is chosen)]

    @property
    def shipped(self) -> Optional[JudgedPoint]:
        """Confirmed by validation first, then passing; the best red point only when nothing passed."""
        return self.confirmed or self.best_passing or self.best_red

    def state_dict(self) -> dict[str, Any]:
        def state(point: Optional[JudgedPoint]) -> Optional[dict[str, Any]]:
            return None if point is None else point.to_state()

        return {
            "best_passing": state(self.best_passing),
            "best_red": state(self.best_red),
            "confirmed": state(self.confirmed),
            "shortlist": [p.to_state() for p in self.shortlist],
            "seen": json.dumps(json_safe(self.seen)),
        }

    def load_state_dict(self, state: dict[str, Any], lambda_: float) -> None:
        restored: dict[tuple[int, int, str], JudgedPoint] = {}  # one object per point, as before saving

        def point(saved: Optional[dict[str, Any]]) -> Optional[JudgedPoint]:
            if saved is None:
                return None
            key = (int(saved["attempt"]), int(saved["step"]), saved["kind"])
            return restored.setdefault(key, JudgedPoint.from_state(saved, lambda_))

        self.best_passing, self.best_red = point(state["best_passing"]), point(state["best_red"])
        self.confirmed = point(state.get("confirmed"))  # absent in checkpoints written before validation
        self.shortlist = [point(saved) for saved in state.get("shortlist", [])]  # type: ignore[misc]
        self.seen = json.loads(state["seen"])


def load_point(model: torch.nn.Module, engine: Any, point: JudgedPoint) -> None:
    """Put a judged checkpoint's weights and masks in ``model`` and its sparse ``engine``."""
    model.load_state_dict(point.weights)
    state = engine.state_dict()
    state["masks"] = point.masks
    engine.load_state_dict(state)
