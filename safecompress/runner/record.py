"""The ``record`` fixture: named metrics and threshold checks with signed margins.

A check never stops the test; the test fails at its end if any check failed. Every check keeps a
signed **margin** (positive: passing by that much; negative: failing by that much), which the driver
uses to rank candidate models. With an ``interval`` the decision follows an explicit policy:

- ``lenient`` (default with an interval): fail only when the whole interval is on the wrong side of
  the limit — noise alone does not turn CI red;
- ``strict``: pass only when the whole interval is on the right side;
- ``point``: compare the point value (the default without an interval).
"""

from __future__ import annotations

import math
import operator
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

POLICIES = ("lenient", "strict", "point")
ROC_POINTS = 200  # a recorded ROC is thinned to about this many points: enough to draw, small in report.json
_OPS: dict[str, Callable[[Any, Any], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_current: ContextVar[Optional["Record"]] = ContextVar("safecompress_record", default=None)


@dataclass
class Check:
    name: str
    value: float
    op: str
    limit: float
    passed: bool
    margin: float
    interval: Optional[tuple[float, float]] = None
    policy: str = "point"

    def describe(self) -> str:
        shown = f"{self.name} = {self.value:.4g}"
        if self.interval is not None:
            shown += f" [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        verdict = "ok" if self.passed else "FAILED"
        return f"{shown} {self.op} {self.limit:.4g} ({self.policy}): {verdict}, margin {self.margin:+.4g}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = list(self.interval) if self.interval is not None else None
        return data


def _as_float(value: Any) -> float:
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


class Record:
    """Collects what a test measured; one per test run (test scope)."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.checks: list[Check] = []
        self.info: dict[str, Any] = {}

    def metric(self, name: str, value: Any) -> float:
        """Record a named number (shown in reports, JUnit properties and the driver's log)."""
        number = _as_float(value)
        self.metrics[name] = number
        return number

    def note(self, name: str, value: Any) -> None:
        """Attach JSON-serialisable detail (an attack's summary, a confusion matrix) to the report."""
        self.info[name] = value

    def warn(self, message: str) -> None:
        """A line the user must see (a target moved, a check that could not be set): shown under the
        test in the terminal and listed among a compression run's warnings."""
        self.info.setdefault("warnings", []).append(str(message))

    def attack(self, name: str, results: Any, limit: Optional[float] = None, *, policy: Optional[str] = None, fpr: float = 0.01) -> bool:
        """Record a membership attack the way reports draw it: its AUC as the graded check ``<= limit``
        (on its 95 % interval, lenient unless ``policy`` says otherwise; without a limit, as a metric
        with its interval in the note, for a test that judges something derived from it), the TPR
        at ``fpr`` as ``{name}_tpr_at_{fpr}pct_fpr``, its summary as a note, and a thinned ROC under
        ``info["rocs"][name]``, which the report plots for every recorded attack."""
        step = max(1, len(results.roc.fpr) // ROC_POINTS)
        self.metric(f"{name}_tpr_at_{100 * fpr:g}pct_fpr", results.tpr_at(fpr).tpr.value)
        self.note(name, results.summary())
        self.info.setdefault("rocs", {})[name] = {"fpr": results.roc.fpr[::step].tolist(), "tpr": results.roc.tpr[::step].tolist()}
        auc = results.auc
        if limit is None:
            self.metric(f"{name}_auc", auc.value)
            return True
        return self.at_most(f"{name}_auc", auc.value, limit, interval=(auc.low, auc.high), policy=policy)

    def at_most(self, name: str, value: Any, limit: float, *, interval: Optional[tuple[float, float]] = None, policy: Optional[str] = None) -> bool:
        """Check ``value <= limit``; with ``interval`` decide by ``policy`` (default ``lenient``)."""
        return self.compare(name, value, "<=", limit, interval=interval, policy=policy)

    def at_least(self, name: str, value: Any, limit: float, *, interval: Optional[tuple[float, float]] = None, policy: Optional[str] = None) -> bool:
        """Check ``value >= limit``; with ``interval`` decide by ``policy`` (default ``lenient``)."""
        return self.compare(name, value, ">=", limit, interval=interval, policy=policy)

    def compare(self, name: str, value: Any, op: str, limit: Any, *, interval: Optional[tuple[float, float]] = None, policy: Optional[str] = None) -> bool:
        if op not in _OPS:
            raise ValueError(f"unsupported comparison {op!r}; use one of {sorted(_OPS)}")
        policy = policy or ("lenient" if interval is not None else "point")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
        if policy != "point" and interval is None:
            raise ValueError(f"policy {policy!r} needs an interval")
        number, bound = self.metric(name, value), _as_float(limit)
        upper_is_good = op in ("<=", "<")
        if policy == "point" or interval is None:
            decisive = number
        else:
            low, high = (_as_float(interval[0]), _as_float(interval[1]))
            interval = (low, high)
            # lenient: the end of the interval nearest to passing decides; strict: the farthest.
            decisive = low if (policy == "lenient") == upper_is_good else high
        margin = (bound - decisive) if upper_is_good else (decisive - bound)
        passed = bool(_OPS[op](decisive, bound)) and not math.isnan(decisive)
        self.checks.append(Check(name, number, op, bound, passed, margin, interval, policy))
        return passed

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def current_record() -> Optional[Record]:
    return _current.get()


def activate(record: Optional[Record]) -> Any:
    """Make ``record`` the target of rewritten asserts; returns a token for :func:`deactivate`."""
    return _current.set(record)


def deactivate(token: Any) -> None:
    _current.reset(token)
