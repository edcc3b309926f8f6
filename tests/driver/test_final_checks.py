"""Where the final-phase checks fall: evenly over the steps after the last topology update."""

from __future__ import annotations

from safecompress.driver.updates import final_check_steps
from safecompress.sparse import PruneSchedule


def test_checks_spread_over_the_final_phase_and_end_on_the_last_step() -> None:
    schedule = PruneSchedule(480, num_updates=8, stop_fraction=0.1)
    assert schedule.update_steps()[-1] == 432
    assert sorted(final_check_steps(schedule, 6)) == [440, 448, 456, 464, 472, 480]
    assert sorted(final_check_steps(schedule, 1)) == [480]


def test_no_checks_when_switched_off_or_nothing_is_left() -> None:
    assert final_check_steps(PruneSchedule(480, num_updates=8), 0) == frozenset()
    assert final_check_steps(PruneSchedule(100, num_updates=4, stop_fraction=0.0), 3) == frozenset()  # the last update is the last step


def test_more_checks_than_steps_test_every_step_once() -> None:
    schedule = PruneSchedule(20, num_updates=2, stop_fraction=0.1)  # updates at 9 and 18, two steps left
    assert sorted(final_check_steps(schedule, 6)) == [19, 20]


def test_without_updates_the_whole_run_is_the_final_phase() -> None:
    assert sorted(final_check_steps(PruneSchedule(90, num_updates=0), 3)) == [30, 60, 90]
