"""Which judged checkpoint ships (issue 13): passing first, then the selection rule; red only when
nothing passed. Each test fails under one named mutation of safecompress/driver/shipping.py."""

from __future__ import annotations

import torch

from safecompress.driver.selection import Candidate, safecompress_select_candidate, score_candidate
from safecompress.driver.shipping import JudgedPoint, ShippingRecord
from safecompress.runner.record import Check
from safecompress.runner.reports import TestReport


def select(candidates: list[Candidate], what: str) -> Candidate:
    return safecompress_select_candidate(candidates=candidates, config=None)


def point(step: int, accuracy: float, leak_margin: float) -> JudgedPoint:
    """A judged checkpoint: a performance test (utility = accuracy) and a safety test at a margin."""
    performance = TestReport("t.py::test_acc", "passed", checks=[Check("acc", accuracy, ">=", 0.0, True, accuracy)], markers=["performance"])
    leak = TestReport("t.py::test_mia", "passed" if leak_margin >= 0 else "failed", remedy="r", checks=[Check("auc", 0.6 - leak_margin, "<=", 0.6, leak_margin >= 0, leak_margin)])
    candidate = Candidate(f"step {step}", None, [performance, leak])
    score_candidate(candidate, 1.0)
    return JudgedPoint(candidate, step, "segment", 1, {"w": torch.full((2,), float(step))}, {"w": torch.ones(2, dtype=torch.bool)})


def test_a_passing_checkpoint_beats_any_red_one_whatever_its_score() -> None:
    """Mutation caught: one pool for all points (a red point with a better score would ship)."""
    record = ShippingRecord(select)
    record.consider(point(10, 0.70, 0.01))
    record.consider(point(20, 0.95, -0.001))  # more accurate, a hair over the leak limit
    assert record.shipped.step == 10 and record.shipped.passed
    assert record.best_red.step == 20


def test_among_passing_points_the_rule_decides_and_ties_go_to_the_later() -> None:
    record = ShippingRecord(select)
    record.consider(point(10, 0.80, 0.02))
    record.consider(point(20, 0.82, 0.02))
    record.consider(point(30, 0.79, 0.02))
    assert record.shipped.step == 20
    record.consider(point(40, 0.82, 0.02))  # same score as step 20
    assert record.shipped.step == 40


def test_the_best_red_point_ships_only_when_nothing_passed() -> None:
    record = ShippingRecord(select)
    record.consider(point(10, 0.80, -0.05))
    message = record.consider(point(20, 0.80, -0.01))
    assert record.shipped.step == 20 and not record.shipped.passed and "best red" in message
    assert [p["step"] for p in record.seen] == [10, 20]


def test_the_record_round_trips_through_a_checkpoint() -> None:
    record = ShippingRecord(select)
    record.consider(point(10, 0.80, 0.01))
    record.consider(point(20, 0.80, -0.01))
    restored = ShippingRecord(select)
    restored.load_state_dict(record.state_dict(), 1.0)
    assert (restored.best_passing.step, restored.best_red.step) == (10, 20)
    assert torch.equal(restored.shipped.weights["w"], record.shipped.weights["w"]) and restored.seen == record.seen
    assert restored.shipped.candidate.score == record.shipped.candidate.score


def rmia_target(nodeid: str, margin: float, cost: str) -> TestReport:
    """A steering target of the RMIA requirement (in-loop or validation evidence) at ``margin``."""
    return TestReport(nodeid, "passed" if margin >= 0 else "missed", cost=cost, role="target", serves="test_rmia_gate", checks=[Check("auc", 0.6 - margin, "<=", 0.6, margin >= 0, margin)])


def targeted_point(step: int, accuracy: float, in_loop_margin: float) -> JudgedPoint:
    performance = TestReport("t.py::test_acc", "passed", checks=[Check("acc", accuracy, ">=", 0.0, True, accuracy)], markers=["performance"])
    candidate = Candidate(f"step {step}", None, [performance, rmia_target("t.py::test_rmia_in_loop", in_loop_margin, "cheap")])
    score_candidate(candidate, 1.0)
    return JudgedPoint(candidate, step, "segment", 1, {"w": torch.full((2,), float(step))}, {"w": torch.ones(2, dtype=torch.bool)})


def test_validation_replaces_the_in_loop_target_of_the_same_requirement() -> None:
    """A point whose in-loop target was missed but whose validation met the same requirement's
    target passes (and the reverse fails). Mutation caught: validation reports added beside the
    in-loop ones instead of replacing them (the missed in-loop target would keep it red)."""
    record = ShippingRecord(select)
    record.consider(targeted_point(10, 0.80, -0.01))
    assert record.shipped.step == 10 and not record.shipped.passed
    line = record.validate(record.shipped, [rmia_target("t.py::test_rmia_validation", 0.02, "validation")])
    assert record.shipped.passed and record.confirmed.step == 10 and record.best_red is None and "confirmed" in line
    assert record.shipped.summary()["validation"]["t.py::test_rmia_validation"]["outcome"] == "passed"


def test_a_rejected_point_makes_way_for_the_next_contender() -> None:
    """Mutation caught: a rejected point kept as the best passing one (it would ship green-labelled)."""
    record = ShippingRecord(select)
    record.consider(targeted_point(10, 0.80, -0.02))  # best red
    record.consider(targeted_point(20, 0.85, 0.01))  # best passing on in-loop evidence
    assert record.shipped.step == 20
    line = record.validate(record.shipped, [rmia_target("t.py::test_rmia_validation", -0.01, "validation")])
    assert "rejected (t.py::test_rmia_validation)" in line and record.best_passing is None
    assert record.shipped.step == 20 and record.shipped.validation is not None  # it beats step 10 among the red
    assert [r.nodeid for r in record.shipped.evidence if r.red] == ["t.py::test_rmia_validation"]


def test_a_validated_point_round_trips_through_a_checkpoint() -> None:
    record = ShippingRecord(select)
    record.consider(targeted_point(10, 0.80, -0.01))
    record.validate(record.shipped, [rmia_target("t.py::test_rmia_validation", 0.02, "validation")])
    restored = ShippingRecord(select)
    restored.load_state_dict(record.state_dict(), 1.0)
    assert restored.shipped.passed and [r.nodeid for r in restored.shipped.validation] == ["t.py::test_rmia_validation"]


VALIDATED = frozenset({"test_rmia_gate"})


def test_the_shortlist_ranks_points_without_the_targets_validation_replaces() -> None:
    """A more accurate point whose only red is the in-loop RMIA target is validated first, and ships
    once confirmed. Mutation caught: the shortlist ranked on the in-loop target (the less accurate,
    in-loop-passing point would be validated first and ship)."""
    record = ShippingRecord(select, 1.0, VALIDATED)
    record.consider(targeted_point(10, 0.80, 0.05))
    record.consider(targeted_point(20, 0.85, -0.01))
    assert [p.step for p in record.shortlist] == [20, 10] and record.shipped.step == 10  # before validation: in-loop classes
    assert record.next_to_validate().step == 20
    record.validate(record.shortlist[0], [rmia_target("t.py::test_rmia_validation", 0.01, "validation")])
    assert record.confirmed.step == 20 and record.shipped.step == 20 and record.next_to_validate() is None


def test_rejected_shortlist_points_hand_over_until_one_is_confirmed_or_none_is_left() -> None:
    record = ShippingRecord(select, 1.0, VALIDATED)
    for step, accuracy in ((10, 0.80), (20, 0.85), (30, 0.82)):
        record.consider(targeted_point(step, accuracy, -0.01))
    judged = []
    while (point := record.next_to_validate()) is not None:
        judged.append(point.step)
        record.validate(point, [rmia_target("t.py::test_rmia_validation", -0.01, "validation")])
    assert judged == [20, 30, 10]  # best first, each once
    assert record.confirmed is None and not record.shipped.passed and record.shipped.step == 20


def test_a_point_red_on_a_test_validation_does_not_replace_is_not_shortlisted() -> None:
    record = ShippingRecord(select, 1.0, VALIDATED)
    red_accuracy = targeted_point(10, 0.80, 0.01)
    red_accuracy.candidate.reports[0] = TestReport("t.py::test_acc", "missed", role="target", checks=[Check("acc", 0.8, ">=", 0.9, False, -0.1)], markers=["performance"])
    record.consider(red_accuracy)
    assert record.shortlist == []


def test_the_shortlist_and_the_confirmed_point_round_trip_as_one_object_each() -> None:
    record = ShippingRecord(select, 1.0, VALIDATED)
    record.consider(targeted_point(10, 0.80, 0.05))
    record.consider(targeted_point(20, 0.85, -0.01))
    restored = ShippingRecord(select, 1.0, VALIDATED)
    restored.load_state_dict(record.state_dict(), 1.0)
    assert [p.step for p in restored.shortlist] == [20, 10] and restored.shortlist[1] is restored.best_passing
    restored.validate(restored.shortlist[1], [rmia_target("t.py::test_rmia_validation", -0.01, "validation")])
    assert restored.best_passing is None and [p.step for p in restored.shortlist] == [20]
