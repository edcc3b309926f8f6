"""The selection rule and steering on hand-made reports: the core a broken driver would get wrong
while every end-to-end run still 'works' (each test here fails under one named mutation)."""

from __future__ import annotations

import pytest

from safecompress.driver.selection import Candidate, safecompress_select_candidate, score_candidate
from safecompress.driver.steering import RemedyController
from safecompress.runner.record import Check
from safecompress.runner.reports import TestReport


def check(name: str, value: float, op: str, limit: float) -> Check:
    passed = value <= limit if op == "<=" else value >= limit
    return Check(name, value, op, limit, passed, (limit - value) if op == "<=" else (value - limit))


def report(nodeid: str, outcome: str = "passed", *, remedy: str | None = None, severity: float = 1.0, checks=(), metrics=None) -> TestReport:
    return TestReport(nodeid, outcome, remedy=remedy, severity=severity, checks=list(checks), metrics=dict(metrics or {}))


def candidate(name: str, *reports: TestReport, lambda_: float = 1.0) -> Candidate:
    scored = Candidate(name, None, list(reports))
    score_candidate(scored, lambda_)
    return scored


def accuracy(value: float) -> TestReport:
    """A performance test whose one check is its utility (no ``metric=`` declared)."""
    performance = report("t.py::test_accuracy", checks=[check("accuracy", value, ">=", 0.0)])
    performance.markers = ["performance"]
    return performance


def test_risk_above_a_limit_lowers_the_score():
    """Mutation caught: flipping the sign of the risk term."""
    leaky = candidate("leaky", accuracy(0.80), report("t.py::test_mia", remedy="r", checks=[check("auc", 0.62, "<=", 0.65)]))
    safe = candidate("safe", accuracy(0.80), report("t.py::test_mia", remedy="r", checks=[check("auc", 0.55, "<=", 0.65)]))
    assert leaky.risk == pytest.approx(-0.03) and safe.risk == pytest.approx(-0.10)
    assert safe.score > leaky.score
    assert safecompress_select_candidate([leaky, safe], config=None) is safe
    at_least = candidate("low", accuracy(0.80), report("t.py::test_entropy", remedy="r", checks=[check("entropy", 0.2, ">=", 0.5)]))
    assert at_least.risk == pytest.approx(0.3)  # below a lower limit is on the unsafe side too


def test_risk_counts_only_tests_that_declare_a_remedy():
    plain = report("t.py::test_other", checks=[check("x", 9.0, "<=", 1.0)])
    scored = candidate("c", accuracy(0.7), plain)
    assert scored.risk == 0.0 and scored.score == pytest.approx(0.7)


def test_failures_are_severity_weighted_before_the_score():
    """Mutation caught: counting red tests instead of weighting them by severity."""
    one_severe = candidate("severe", accuracy(0.9), report("t.py::test_a", "failed", severity=3.0))
    two_mild = candidate("mild", accuracy(0.5), report("t.py::test_b", "failed"), report("t.py::test_c", "error"))
    assert (one_severe.failures, two_mild.failures) == (3.0, 2.0)
    assert safecompress_select_candidate([one_severe, two_mild], config=None) is two_mild


def test_ties_go_to_the_first_candidate():
    """The loop passes a new final checkpoint first, so a tie keeps the newer one."""
    first, second = candidate("new", accuracy(0.8)), candidate("old", accuracy(0.8))
    assert safecompress_select_candidate([first, second], config=None) is first


def test_a_remedy_shared_by_two_tests_is_red_when_any_of_them_is():
    """Mutation caught: 'last report wins' for a remedy two tests declare."""
    controller = RemedyController()
    reports = [report("t.py::test_rmia", "failed", remedy="advreg"), report("t.py::test_loss", "passed", remedy="advreg")]
    decision = controller.observe(reports, {"advreg": (0.2, 1.6)})
    assert decision["advreg"]["red"] is True and decision["advreg"]["weight"] == pytest.approx(0.2)
    decision = controller.observe(list(reversed(reports)), {"advreg": (0.2, 1.6)})
    assert decision["advreg"]["weight"] == pytest.approx(0.4)


def test_a_skipped_test_does_not_steer():
    controller = RemedyController()
    assert controller.observe([report("t.py::test_rmia", "skipped", remedy="advreg")], {"advreg": (0.2, 1.6)}) == {}
