"""Declared metric roles (issue 13): selection reads the utility metric a performance test declares,
never a silent zero for a metric under another name, and says which checks count as risk."""

from __future__ import annotations

import pytest

import safecompress
from safecompress.driver.selection import Candidate, metric_roles, score_candidate
from safecompress.runner.items import TestItem
from safecompress.runner.record import Check
from safecompress.runner.reports import TestReport


def check(name: str, value: float) -> Check:
    return Check(name, value, ">=", 0.0, True, value)


def performance(checks, metric=None, metrics=None) -> TestReport:
    return TestReport("t.py::test_task", "passed", checks=list(checks), metrics=dict(metrics or {}), markers=["performance"], utility_metric=metric)


def test_the_declared_metric_is_the_utility_even_when_it_is_not_called_accuracy() -> None:
    """Mutation caught: reading a metric named ``accuracy`` (the old rule gave 0 here)."""
    scored = Candidate("c", None, [performance([check("acc", 0.83), check("f1", 0.5)], metric="acc")])
    score_candidate(scored, 1.0)
    assert scored.utility == pytest.approx(0.83)
    metric_only = Candidate("m", None, [performance([check("floor", 0.1)], metric="macro_f1", metrics={"macro_f1": 0.61})])
    score_candidate(metric_only, 1.0)
    assert metric_only.utility == pytest.approx(0.61)  # a declared metric may be a plain record.metric


def test_an_undeclared_performance_test_with_one_check_uses_it() -> None:
    scored = Candidate("c", None, [performance([check("top1", 0.77)])])
    score_candidate(scored, 1.0)
    assert scored.utility == pytest.approx(0.77)


def test_a_suite_without_utility_is_warned_about_not_silently_zeroed() -> None:
    leak = TestReport("t.py::test_mia", "passed", remedy="r", checks=[Check("auc", 0.55, "<=", 0.6, True, 0.05)])
    roles = metric_roles([leak])
    assert roles.utility == [] and roles.risk == ["t.py::test_mia: auc <= 0.6"]
    assert any("no performance test" in w for w in roles.warnings)
    ambiguous = metric_roles([performance([check("a", 0.5), check("b", 0.6)]), leak])
    assert any("declares no utility metric" in w and "(a, b)" in w for w in ambiguous.warnings)
    declared = metric_roles([performance([check("acc", 0.8)], metric="acc"), leak])
    assert declared.utility == ["t.py::test_task: acc"] and declared.warnings == []


def test_marks_carry_the_metric_and_the_ladder() -> None:
    @safecompress.mark.performance(metric="acc")
    @safecompress.mark.remedy("adversarial_regularization", ("relaxloss", {"alpha": 0.3}), max_weight=0.8)
    def test_x():
        pass

    from safecompress.runner.marks import get_marks

    item = TestItem("t.py::test_x", None, "t.py", test_x, (), marks=get_marks(test_x))
    assert item.utility_metric == "acc"
    assert item.remedy_ladder == [("adversarial_regularization", {"max_weight": 0.8}), ("relaxloss", {"alpha": 0.3})]
    with pytest.raises(ValueError, match="twice"):
        safecompress.mark.remedy("flooding", "flooding")
    with pytest.raises(ValueError, match="at least one"):
        safecompress.mark.remedy()
