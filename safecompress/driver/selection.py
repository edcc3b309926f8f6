"""Selecting the candidate topology that survives an update (METHOD.md §3.4), as a replaceable hook.

Default rule: fewest severity-weighted red tests first, then the best bi-objective score
``utility − λ·risk``. Utility is the mean of the performance tests' utility metrics (each declared
with ``@safecompress.mark.performance(metric=...)``, by default the test's one recorded check); risk
sums, over every check of every safety test (a test that declares a remedy), how far the measured
value sits on the unsafe side of its limit (negative when safely below). :func:`metric_roles` says
which checks play which role, and warns when a suite gives selection no utility to weigh. Every
candidate's numbers are logged, so any other rule can be replayed from ``decisions.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

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
    utility: float = float("nan")
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
            "utility": self.utility,
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


PERFORMANCE_MARK = "performance"


def utility_check(report: TestReport) -> Optional[str]:
    """The name of a performance test's utility metric: the declared one, else its only check."""
    if report.utility_metric is not None:
        return report.utility_metric
    return report.checks[0].name if len(report.checks) == 1 else None


def utility_value(report: TestReport) -> Optional[float]:
    """A performance test's utility on this model (None when it did not measure it)."""
    name = utility_check(report)
    if name is None:
        return None
    for check in report.checks:
        if check.name == name:
            return float(check.value)
    value = report.metrics.get(name)
    return None if value is None else float(value)


def score_candidate(candidate: Candidate, lambda_: float) -> None:
    """Fill in failures, utility, risk and score (pure function of the reports). Without any utility
    measured the utility term is 0 (``metric_roles`` warns about it once, at the start of the run)."""
    candidate.failures = sum(r.severity for r in candidate.reports if r.red)
    utilities = [u for u in (utility_value(r) for r in candidate.reports if PERFORMANCE_MARK in r.markers) if u is not None]
    candidate.utility = sum(utilities) / len(utilities) if utilities else 0.0
    candidate.risk = sum(check_risk(r) for r in candidate.reports if r.remedy is not None)
    candidate.score = candidate.utility - lambda_ * candidate.risk


@dataclass
class MetricRoles:
    """Which checks selection reads as utility and which as risk, and what is wrong with that."""

    utility: list[str]
    risk: list[str]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"utility": self.utility, "risk": self.risk, "warnings": self.warnings}


def metric_roles(reports: Sequence[TestReport]) -> MetricRoles:
    """The roles of the checks in ``reports`` (e.g. the baseline run on the dense parent)."""
    utility, risk, warnings = [], [], []
    performance = [r for r in reports if PERFORMANCE_MARK in r.markers]
    for report in performance:
        name = utility_check(report)
        if name is None:
            checks = ", ".join(c.name for c in report.checks) or "none"
            warnings.append(f"{report.nodeid} is a performance test but declares no utility metric and records {len(report.checks)} checks ({checks}): use @safecompress.mark.performance(metric=...)")
        elif utility_value(report) is None and report.outcome not in ("skipped", "error"):
            warnings.append(f"{report.nodeid} declares utility metric {name!r} but did not record it")
        else:
            utility.append(f"{report.nodeid}: {name}")
    if not performance:
        warnings.append("no performance test (@safecompress.mark.performance) in the suite: selection weighs risk alone, and nothing guards the task's accuracy")
    for report in reports:
        if report.remedy is not None:
            risk += [f"{report.nodeid}: {check.name} {check.op} {check.limit:.4g}" for check in report.checks]
    return MetricRoles(utility, risk, warnings)


def hook_selector(pm: Any, config: "Config") -> Callable[[list[Candidate], str], Candidate]:
    """``select(candidates, what)`` through the ``safecompress_select_candidate`` hook; a hook that
    returns None is an error naming what was being selected."""
    from safecompress.errors import SafeCompressError

    def select(candidates: list[Candidate], what: str) -> Candidate:
        chosen = pm.hook.safecompress_select_candidate(candidates=candidates, config=config)
        if chosen is None:
            raise SafeCompressError(f"no {what} was selected (a safecompress_select_candidate hook returned None)")
        return chosen

    return select


def rank_key(candidate: Candidate) -> tuple[float, float]:
    return (candidate.failures, -candidate.score)


@hookimpl(trylast=True)
def safecompress_select_candidate(candidates: Sequence[Candidate], config: "Config") -> Optional[Candidate]:
    if not candidates:
        return None
    return min(candidates, key=rank_key)  # min is stable: ties go to the first proposed
