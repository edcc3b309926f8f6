"""Reports are plain, serialisable data: what reporters print and what the driver ranks candidates by."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, get_args

from safecompress.runner.record import Check

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "missed"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
GATE_RED_OUTCOMES = ("failed", "error")  # what makes a run red: a requirement failed, or any test broke
RED_OUTCOMES = GATE_RED_OUTCOMES + ("missed",)  # what steers the loop: a missed target steers like a failure
REPORT_SCHEMA = "safecompress.report"
REPORT_SCHEMA_VERSION = 3  # 3: tests gained role and serves, and the outcome "missed" (a target not met); 2: maskable/whole-model density, fallback_remedies, utility_metric


@dataclass
class CallInfo:
    """The result of one phase (setup, call, teardown): an exception or nothing, and its duration."""

    when: str
    start: float
    duration: float
    excinfo: Optional[BaseException] = None
    traceback: str = ""

    @classmethod
    def from_call(cls, func: Callable[[], Any], when: str, reraise: tuple[type[BaseException], ...] = ()) -> "CallInfo":
        import traceback as tb

        start = time.perf_counter()
        try:
            func()
        except reraise:
            raise
        except BaseException as exc:  # noqa: BLE001 - any exception becomes part of a report
            return cls(when, start, time.perf_counter() - start, exc, "".join(tb.format_exception(exc)))
        return cls(when, start, time.perf_counter() - start)


@dataclass
class TestReport:
    """How one test went against one model."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    when: str = "call"
    duration: float = 0.0
    message: str = ""
    longrepr: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    cost: str = "cheap"
    remedy: Optional[str] = None
    remedy_options: dict[str, Any] = field(default_factory=dict)
    fallback_remedies: list[list[Any]] = field(default_factory=list)  # later rungs of the ladder: [name, options]
    utility_metric: Optional[str] = None  # a performance test's declared utility metric
    severity: float = 1.0
    markers: list[str] = field(default_factory=list)
    model_label: str = ""
    role: str = "requirement"  # "requirement": decides the exit code; "target": steers, reported as met or missed
    serves: Optional[str] = None  # the requirement a target stands in for

    @property
    def red(self) -> bool:
        """Red in the loop's eyes: a failure, an error or a missed target all steer."""
        return self.outcome in RED_OUTCOMES

    @property
    def fails_gate(self) -> bool:
        """Makes a run red: a requirement that failed, or any test that errored (broken test code
        must never pass silently, whatever its role). A missed target does not."""
        return self.outcome in GATE_RED_OUTCOMES

    @property
    def evidence(self) -> str:
        """What the numbers are: ``in-loop`` (cheap, small audit set), ``validation`` (strong attacks on
        rows the gate does not score, for the point about to ship) or ``gate`` (strong attacks, the gate's rows)."""
        return {"cheap": "in-loop", "validation": "validation"}.get(self.cost, "gate")

    @property
    def margin(self) -> Optional[float]:
        """The worst (smallest) check margin: how far the test is from passing, or how safely it passes."""
        return min((c.margin for c in self.checks), default=None)

    @property
    def ladder(self) -> list[tuple[str, dict[str, Any]]]:
        """The remedy ladder this test declares, first rung first (empty: no remedy)."""
        if self.remedy is None:
            return []
        return [(self.remedy, dict(self.remedy_options))] + [(str(name), dict(options)) for name, options in self.fallback_remedies]

    @property
    def name(self) -> str:
        return self.nodeid.rsplit("::", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "when": self.when,
            "duration": round(self.duration, 6),
            "message": self.message,
            "longrepr": self.longrepr,
            "metrics": self.metrics,
            "checks": [c.to_dict() for c in self.checks],
            "margin": self.margin,
            "info": self.info,
            "cost": self.cost,
            "remedy": self.remedy,
            "remedy_options": self.remedy_options,
            "fallback_remedies": self.fallback_remedies,
            "utility_metric": self.utility_metric,
            "severity": self.severity,
            "markers": self.markers,
            "model": self.model_label,
            "role": self.role,
            "serves": self.serves,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TestReport":
        checks = [Check(**{**c, "interval": tuple(c["interval"]) if c.get("interval") is not None else None}) for c in data.get("checks", [])]
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("checks", "model_label")}
        return cls(**fields, checks=checks, model_label=data.get("model", ""))


@dataclass
class SessionResult:
    """Everything one run against one model produced; reporters write it, the driver reads it."""

    reports: list[TestReport]
    exitstatus: int
    duration: float
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def counts(self) -> dict[str, int]:
        counts = {o: 0 for o in OUTCOMES}
        for report in self.reports:
            counts[report.outcome] += 1
        return counts

    def summary_line(self) -> str:
        """pytest's closing line, e.g. ``1 failed, 2 passed in 3.21s``."""
        counts = self.counts()
        order = ("failed", "passed", "missed", "skipped", "xfailed", "xpassed", "error")
        names = {"error": "errors" if counts["error"] > 1 else "error", "missed": "target missed" if counts["missed"] == 1 else "targets missed"}
        parts = [f"{counts[o]} {names.get(o, o)}" for o in order if counts[o]]
        if self.collection_errors:
            parts.append(f"{len(self.collection_errors)} collection error{'s' if len(self.collection_errors) > 1 else ''}")
        return f"{', '.join(parts) or 'no tests ran'} in {self.duration:.2f}s"

    def to_dict(self) -> dict[str, Any]:
        from safecompress import __version__

        return {
            "schema": REPORT_SCHEMA,
            "schema_version": REPORT_SCHEMA_VERSION,
            "safecompress_version": __version__,
            "python": platform.python_version(),
            "created": self.started,
            "exitstatus": self.exitstatus,
            "duration": round(self.duration, 6),
            "summary": self.counts(),
            "model": self.model,
            "settings": self.settings,
            "collection_errors": self.collection_errors,
            "tests": [r.to_dict() for r in self.reports],
        }
