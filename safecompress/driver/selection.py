"""Selecting the candidate topology that survives an update (METHOD.md §3.4), as a replaceable hook.

Default rule: fewest severity-weighted red tests first, then the best bi-objective score
``accuracy − λ·risk``, where risk sums, over every check of every safety test (a test that declares
a remedy), how far the measured value sits on the unsafe side of its limit (negative when safely
below). Every candidate's numbers are logged, so any other rule can be replayed from
``decisions.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

from safecompress.hookspecs import hookimpl
from safecompress.runner.reports import TestReport

if TYPE_CHECKING:
    from safecompress.config import Config


@dataclass
class Candidate:
    """One proposed topology after its probe and its safety tests."""

    name: str
    mask: Any  # safecompress.sparse.CandidateMask
    reports: list[TestReport]
    probe_loss: float = float("nan")
    seconds: float = 0.0
    failures: float = 0.0
    accuracy: float = float("nan")
    risk: float = 0.0
    score: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        merged: dict[str, float] = {}
        for report in self.reports:
            merged.update(report.metrics)
        return merged

    def red_tests(self) -> list[str]:
        return [r.nodeid for r in self.reports if r.red]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prune_fraction": getattr(self.mask, "prune_fraction", None),
            "replaced": getattr(self.mask, "num_replaced", None),
            "probe_loss": self.probe_loss,
            "seconds": round(self.seconds, 4),
            "failures": self.failures,
            "accuracy": self.accuracy,
            "risk": self.risk,
            "score": self.score,
            "metrics": self.metrics(),
            "outcomes": {r.nodeid: r.outcome for r in self.reports},
            "margins": {r.nodeid: r.margin for r in self.reports},
            **self.extra,
        }


def check_risk(report: TestReport) -> float:
    """Signed distance on the unsafe side of each limit, summed over a safety test's checks (point values)."""
    total = 0.0
    for check in report.checks:
        total += (check.value - check.limit) if check.op in ("<=", "<") else (check.limit - check.value)
    return total


def score_candidate(candidate: Candidate, lambda_: float, accuracy_metric: str = "accuracy") -> None:
    """Fill in failures, accuracy, risk and score (pure function of the reports)."""
    candidate.failures = sum(r.severity for r in candidate.reports if r.red)
    metrics = candidate.metrics()
    candidate.accuracy = float(metrics.get(accuracy_metric, 0.0))
    candidate.risk = sum(check_risk(r) for r in candidate.reports if r.remedy is not None)
    candidate.score = candidate.accuracy - lambda_ * candidate.risk


def rank_key(candidate: Candidate) -> tuple[float, float]:
    return (candidate.failures, -candidate.score)


@hookimpl(trylast=True)
def safecompress_select_candidate(candidates: Sequence[Candidate], config: "Config") -> Optional[Candidate]:
    if not candidates:
        return None
    return min(candidates, key=rank_key)  # min is stable: ties go to the first proposed
