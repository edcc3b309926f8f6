"""Steering rules (METHOD.md §3.5) and the performance guard, on hand-made reports."""

from __future__ import annotations

import pytest

from safecompress.driver.steering import RemedyController
from safecompress.runner.reports import TestReport

BASES = {"flooding": (0.25, 1.0)}


def reports(safety_red: bool, accuracy_red: bool = False) -> list[TestReport]:
    return [
        TestReport("t.py::test_rmia", "failed" if safety_red else "passed", remedy="flooding"),
        TestReport("t.py::test_accuracy", "failed" if accuracy_red else "passed", markers=["cheap", "performance"]),
    ]


def trace(controller: RemedyController, steps: list[tuple[bool, bool]]) -> list[float]:
    return [controller.observe(reports(*step), BASES)["flooding"]["weight"] for step in steps]


def test_red_switches_on_doubles_to_cap_then_halves_and_switches_off() -> None:
    steps = [(False, False)] + [(True, False)] * 4 + [(False, False)] * 5
    weights = trace(RemedyController(), steps)
    # off until a quarter of the base weight is halved away (0.0625 stays, 0.03125 is off)
    assert weights == pytest.approx([0.0, 0.25, 0.5, 1.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.0])


def test_red_performance_test_holds_remedies_off_and_backs_them_off() -> None:
    controller = RemedyController()
    weights = trace(controller, [(True, True), (True, False), (True, False), (True, True), (True, True), (True, False)])
    # held off while accuracy is red; on and doubling once it is green; halved while it is red again;
    # red again at 0.125 after the guard was red at 0.25: bisect inside that bracket, not double
    assert weights == pytest.approx([0.0, 0.25, 0.5, 0.25, 0.125, 0.1875])
    decision = controller.observe(reports(True, True), BASES)["flooding"]
    assert decision["guard_red"] and "performance test red (t.py::test_accuracy)" in decision["why"]


def test_a_red_test_without_the_performance_mark_does_not_guard() -> None:
    controller = RemedyController()
    other = [TestReport("t.py::test_rmia", "failed", remedy="flooding"), TestReport("t.py::test_loss", "failed", markers=["cheap"])]
    assert controller.observe(other, BASES)["flooding"]["weight"] == pytest.approx(0.25)


def test_skipped_safety_tests_do_not_steer_and_state_round_trips() -> None:
    controller = RemedyController()
    assert controller.observe([TestReport("t.py::test_rmia", "skipped", remedy="flooding")], BASES) == {}
    trace(controller, [(True, False), (True, False)])
    restored = RemedyController()
    restored.load_state_dict(controller.state_dict())
    assert restored.weights() == controller.weights() == {"flooding": pytest.approx(0.5)}
