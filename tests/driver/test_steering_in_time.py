"""Steering that acts in time (issue 13): baseline, trend, ladder, learned plans, measured effects.

Each test fails under one named mutation of safecompress/driver/steering.py.
"""

from __future__ import annotations

import pytest

from safecompress.driver.steering import RemedyController, SteeringPlan, ladder_key
from safecompress.runner.record import Check
from safecompress.runner.reports import TestReport

BASES = {"adv": (0.1, 0.4), "flood": (0.25, 1.0)}
LADDER = ladder_key(["adv", "flood"])


def leak(margin: float, *, ladder: bool = True) -> TestReport:
    """The safety test at a given margin (negative: red), declaring the ladder adv > flood."""
    check = Check("rmia_auc", 0.6 - margin, "<=", 0.6, margin >= 0, margin)
    return TestReport("t.py::test_rmia", "passed" if margin >= 0 else "failed", remedy="adv", fallback_remedies=[["flood", {}]] if ladder else [], checks=[check])


def observe(controller: RemedyController, margin: float, step: int, next_step: int | None = None, **kw) -> dict:
    return controller.observe([leak(margin)], BASES, step, next_step, **kw)


def test_a_green_margin_heading_for_its_limit_switches_the_remedy_on_now() -> None:
    """Mutation caught: extrapolating with the wrong sign, or ignoring the trend."""
    falling = RemedyController()
    observe(falling, 0.05, step=10, next_step=20)
    decision = observe(falling, 0.02, step=20, next_step=40)["adv"]
    assert decision["weight"] == pytest.approx(0.1)  # 0.02 − 0.003·20 = −0.04 < 0 by step 40
    assert "heading for -0.0400" in decision["why"]
    rising = RemedyController()
    observe(rising, 0.02, step=10, next_step=20)
    assert observe(rising, 0.05, step=20, next_step=40)["adv"]["weight"] == 0.0


def test_a_rung_stalled_at_its_cap_hands_over_to_the_next() -> None:
    """Mutation caught: never handing over, or handing over while the margin still improves."""
    controller = RemedyController(stall_gain=0.005)
    log = [observe(controller, margin, step * 10) for step, margin in enumerate([-0.05, -0.05, -0.049, -0.049, -0.048], start=1)]
    weights = [(d["adv"]["weight"], d["flood"]["weight"]) for d in log]
    # adv: on, doubled, at its cap (0.4); a decision later it has gained 0.001 < 0.005 in two: flood takes over
    assert weights == [(0.1, 0.0), (0.2, 0.0), (0.4, 0.0), (0.0, 0.25), (0.0, 0.5)]
    assert "handed over to flood" in log[3]["adv"]["why"] and "next rung" in log[3]["flood"]["why"]
    assert controller.ladders[LADDER].rung == 1
    improving = RemedyController(stall_gain=0.005)
    for step, margin in enumerate([-0.05, -0.04, -0.03, -0.02, -0.01, -0.005], start=1):
        observe(improving, margin, step * 10)
    assert improving.ladders[LADDER].rung == 0 and improving.weights()["adv"] == pytest.approx(0.4)


def test_the_effect_of_a_remedy_is_the_margin_it_moved_while_on() -> None:
    controller = RemedyController()
    assert observe(controller, -0.05, 10)["adv"]["effect"] is None  # it was off before this decision
    assert observe(controller, -0.03, 20)["adv"]["effect"] == pytest.approx(0.02)
    assert observe(controller, -0.04, 30)["flood"]["effect"] is None  # never on


def test_a_learned_plan_starts_the_next_attempt_where_this_one_got() -> None:
    """Mutation caught: a plan that restarts a stalled rung, or starts below what was reached."""
    controller = RemedyController(stall_gain=0.005)
    for step in range(1, 7):
        observe(controller, -0.05, step * 10)
    plan = controller.learned_plan()
    assert plan.rungs[LADDER] == 1 and "adv" not in plan.weights and plan.weights["flood"] == pytest.approx(1.0)
    nxt = RemedyController(plan=SteeringPlan.from_dict(plan.to_dict()))
    baseline = observe(nxt, 0.01, 0, baseline=True)  # green on the parent: the plan still stands at step 0
    assert baseline["flood"]["weight"] == pytest.approx(1.0) and baseline["flood"]["active"] and baseline["adv"]["weight"] == 0.0
    assert "earlier attempt" in baseline["flood"]["why"]


def test_a_red_parent_switches_the_remedy_on_at_the_baseline() -> None:
    decision = observe(RemedyController(), -0.08, 0, next_step=50, baseline=True)["adv"]
    assert decision["weight"] == pytest.approx(0.1) and decision["why"] == "switched on: test red"


def test_the_ladder_state_round_trips() -> None:
    controller = RemedyController()
    for step in range(1, 5):
        observe(controller, -0.05, step * 10)
    restored = RemedyController()
    restored.load_state_dict(controller.state_dict())
    assert restored.state_dict() == controller.state_dict()


def test_a_weight_bracketed_by_a_leak_and_an_accuracy_loss_is_bisected() -> None:
    """Mutation caught: pure doubling/halving, which swings between 0.5 (leaks) and 1.0 (costs
    accuracy) for ever, as it did on the demo; bisection tries 0.75."""
    controller = RemedyController()
    accuracy = TestReport("t.py::test_acc", "passed", markers=["performance"], checks=[Check("acc", 0.8, ">=", 0.7, True, 0.1)])
    red_accuracy = TestReport("t.py::test_acc", "failed", markers=["performance"], checks=[Check("acc", 0.6, ">=", 0.7, False, -0.1)])
    weights = []
    for step, (margin, perf) in enumerate([(-0.05, accuracy), (-0.05, accuracy), (-0.05, accuracy), (0.01, red_accuracy), (-0.02, accuracy)], start=1):
        weights.append(controller.observe([leak(margin, ladder=False), perf], {"adv": (0.25, 1.0)}, step * 10)["adv"]["weight"])
    assert weights == pytest.approx([0.25, 0.5, 1.0, 0.5, 0.75])
    state = controller.states["adv"]
    assert (state.too_weak, state.too_strong) == (0.5, 1.0)


def test_a_stale_bracket_is_dropped_so_the_weight_can_grow_again() -> None:
    """Mutation caught: brackets kept for ever (measured on the demo: the weight crept towards an
    accuracy bound measured 6 decisions earlier while the leak stayed red at every decision)."""
    controller = RemedyController()
    state_bases = {"adv": (0.25, 4.0)}
    ok = TestReport("t.py::test_acc", "passed", markers=["performance"], checks=[Check("acc", 0.8, ">=", 0.7, True, 0.1)])
    bad = TestReport("t.py::test_acc", "failed", markers=["performance"], checks=[Check("acc", 0.6, ">=", 0.7, False, -0.1)])
    script = [(-0.05, ok), (-0.05, ok), (-0.05, bad)] + [(-0.05, ok)] * 6
    weights = [controller.observe([leak(m, ladder=False), perf], state_bases, 10 * i)["adv"]["weight"] for i, (m, perf) in enumerate(script, start=1)]
    # 0.25, 0.5, guard red at 0.5 → 0.25, then bisecting below 0.5 while the bound is fresh, doubling again once it is stale
    assert weights[:3] == [0.25, 0.5, 0.25]
    assert all(w < 0.5 for w in weights[3:6]) and weights[-1] > 0.5


def test_fixed_remedies_stay_on_at_their_weight_whatever_the_tests_say() -> None:
    """The benchmark's always-on defences. Mutation caught: a fixed weight that red or green reports move."""
    import torch

    from safecompress.driver.steering import Steering
    from safecompress.errors import UsageError
    from safecompress.remedies import BUILTIN_REMEDIES, RemedyContext

    def context(options: dict) -> RemedyContext:
        return RemedyContext(num_classes=2, device=torch.device("cpu"), reference=None, seed=0, options=options)

    steering = Steering(dict(BUILTIN_REMEDIES), context)
    steering.fix({"relaxloss": 1.0})
    red = TestReport("t.py::test_rmia", "failed", remedy="relaxloss", checks=[Check("rmia_auc", 0.7, "<=", 0.6, False, -0.1)])
    for step in (0, 10, 20):
        assert steering.steer([red], step, step + 10) == {}
        assert steering.weights() == {"relaxloss": 1.0}
    logits, labels = torch.randn(8, 2), torch.randint(0, 2, (8,))
    assert torch.isfinite(steering.add_losses(torch.tensor(0.0), None, None, logits, labels))
    for bad in ({"no_such_remedy": 1.0}, {"relaxloss": 0.0}, {"relaxloss": float("nan")}):
        with pytest.raises(UsageError):
            Steering(dict(BUILTIN_REMEDIES), context).fix(bad)
