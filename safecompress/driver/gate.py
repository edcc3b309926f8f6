"""The final gate (METHOD.md §3, after training): the full suite on the compressed model and on its
dense parent, the deltas with intervals, honest test accuracy, and everything a third party needs
to re-audit the model (which samples were members, the seed, the versions)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Optional

from torch import nn

from safecompress.data.splits import DataSplits
from safecompress.errors import ExitCode
from safecompress.inference import predict_logits
from safecompress.metrics import clopper_pearson
from safecompress.runner.reports import TestReport
from safecompress.runner.session import SafetySession


@dataclass
class GateRun:
    label: str
    reports: list[TestReport]
    test_accuracy: dict[str, float]
    densities: dict[str, Any]  # sparse.model_densities: maskable and whole-model density

    @property
    def passed(self) -> bool:
        """Every requirement met (a missed steering target does not make the gate red)."""
        return not any(r.fails_gate for r in self.reports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "passed": self.passed,
            **self.densities,
            "test_accuracy": self.test_accuracy,
            "tests": [r.to_dict() for r in self.reports],
        }


def held_out_accuracy(model: nn.Module, data: DataSplits, device: Any) -> dict[str, float]:
    """Top-1 accuracy on the held-out test split (never used for any selection), with a 95 % interval."""
    logits = predict_logits(model, data.test, device)
    correct = int((logits.argmax(1) == data.test.labels).sum())
    interval = clopper_pearson(correct, len(data.test))
    return {"value": interval.value, "low": interval.low, "high": interval.high, "n": len(data.test)}


def run_gate(session: SafetySession, model: nn.Module, label: str, data: DataSplits, densities: dict[str, Any]) -> GateRun:
    session.set_model(model, label=label)
    reports = session.run()
    return GateRun(label, reports, held_out_accuracy(model, data, session.device), densities)


def requirement_verdict(session: SafetySession, model: nn.Module, label: str) -> dict[str, Any]:
    """What ``safecompress test`` would decide for ``model`` (against ``session.dense_model`` when
    set): every test runs, the requirements decide. The benchmark reports it per arm, so the table
    says whether each method's model would ship, and the targets' outcomes and metrics beside the
    requirements' show how well in-loop evidence predicts the gate."""
    session.set_model(model, label=label)
    reports = session.run()
    return {
        "passed": not any(r.fails_gate for r in reports),
        "red": [r.nodeid for r in reports if r.fails_gate],
        "outcomes": {r.nodeid: r.outcome for r in reports if r.role == "requirement"},
        "targets": {r.nodeid: r.outcome for r in reports if r.role == "target"},
        "metrics": {r.nodeid: {k: v for k, v in r.metrics.items() if isinstance(v, (int, float))} for r in reports},
    }


def _intervals(report: TestReport) -> dict[str, tuple[float, Optional[float], Optional[float]]]:
    values: dict[str, tuple[float, Optional[float], Optional[float]]] = {k: (v, None, None) for k, v in report.metrics.items()}
    for check in report.checks:
        low, high = check.interval if check.interval is not None else (None, None)
        values[check.name] = (check.value, low, high)
    return values


def _check_outcome(report: TestReport, metric: str) -> str:
    """The verdict of the check on ``metric`` ("passed"/"failed", "met"/"missed" for a steering
    target's); "" for a metric no check judged (a value recorded beside one, such as a TPR or the
    parent's number), which decides nothing."""
    check = next((c for c in report.checks if c.name == metric), None)
    if check is None:
        return ""
    if report.role == "target":
        return "met" if check.passed else "missed"
    return "passed" if check.passed else "failed"


def _limit_text(report: TestReport, metric: str) -> str:
    """The check's limit and role as a table cell: ``requirement <= -0.05 (point)``, "" for a bare metric."""
    check = next((c for c in report.checks if c.name == metric), None)
    if check is None:
        return ""
    return f"{report.role} {check.op} {check.limit:.4g} ({check.policy})"


def compare(compressed: GateRun, dense: GateRun) -> list[dict[str, Any]]:
    """Per metric: both values, their intervals, and the delta with a conservative interval
    (the difference of independent intervals: [low_c − high_d, high_c − low_d])."""
    rows: list[dict[str, Any]] = []
    dense_by_id = {r.nodeid: r for r in dense.reports}
    for report in compressed.reports:
        other = dense_by_id.get(report.nodeid)
        if other is None:
            continue
        mine, theirs = _intervals(report), _intervals(other)
        for name, (value, low, high) in mine.items():
            if name not in theirs:
                continue
            d_value, d_low, d_high = theirs[name]
            row: dict[str, Any] = {
                "test": report.nodeid,
                "metric": name,
                "compressed": value,
                "compressed_interval": [low, high] if low is not None else None,
                "dense": d_value,
                "dense_interval": [d_low, d_high] if d_low is not None else None,
                "delta": value - d_value,
                "delta_interval": [low - d_high, high - d_low] if (low is not None and d_low is not None and high is not None and d_high is not None) else None,
                "compressed_outcome": _check_outcome(report, name),
                "dense_outcome": _check_outcome(other, name),
                "evidence": report.evidence,
                "role": report.role,
                "limit": _limit_text(report, name),
            }
            rows.append(row)
    rows.append(
        {
            "test": "(held-out test split)",
            "metric": "test_accuracy",
            "compressed": compressed.test_accuracy["value"],
            "compressed_interval": [compressed.test_accuracy["low"], compressed.test_accuracy["high"]],
            "dense": dense.test_accuracy["value"],
            "dense_interval": [dense.test_accuracy["low"], dense.test_accuracy["high"]],
            "delta": compressed.test_accuracy["value"] - dense.test_accuracy["value"],
            "delta_interval": [compressed.test_accuracy["low"] - dense.test_accuracy["high"], compressed.test_accuracy["high"] - dense.test_accuracy["low"]],
            "compressed_outcome": "",
            "dense_outcome": "",
            "evidence": "gate",
            "role": "",
            "limit": "",
        }
    )
    return rows


def versions() -> dict[str, str]:
    import numpy
    import torch

    from safecompress import __version__

    found = {"safecompress": __version__, "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        import transformers

        found["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover - a dependency, but the report should not fail for it
        pass
    return found


def exit_status(compressed: GateRun) -> int:
    return int(ExitCode.OK if compressed.passed else ExitCode.TESTS_FAILED)
