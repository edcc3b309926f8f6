"""The report's charts (issue 15): a discrete axis (topology updates, decisions) is labelled with
whole numbers only, where it used to get fractional ticks such as 0.75 and 2.57."""

from __future__ import annotations

import re

from safecompress.driver.report import candidate_charts, svg_chart


def x_tick_labels(svg: str, height: int = 300, bottom: int = 40) -> list[str]:
    return re.findall(rf'<text x="[0-9.]+" y="{height - bottom + 14}" text-anchor="middle">([^<]+)</text>', svg)


def test_update_axis_ticks_are_whole_numbers() -> None:
    updates = [{"update": u, "winner": "a", "candidates": [{"name": "a", "utility": 0.8, "risk": 0.01 * u}, {"name": "b", "utility": 0.7, "risk": 0.02}]} for u in range(1, 9)]
    charts = candidate_charts(updates)
    labels = x_tick_labels(charts)
    assert labels and all(re.fullmatch(r"\d+", label) for label in labels), labels
    assert {"1", "8"} <= set(labels)


def test_a_sole_candidate_that_was_not_judged_is_not_charted() -> None:
    updates = [{"update": u, "winner": "a", "candidates": [{"name": "a", "utility": 0.0, "risk": 0.0, "outcomes": {}}]} for u in range(1, 4)]
    assert "<circle" not in candidate_charts(updates)


def test_a_long_discrete_axis_is_thinned_and_a_continuous_one_is_not_rounded() -> None:
    long = svg_chart("t", [{"name": "s", "points": [(i, i * 0.1) for i in range(60)]}], "decision", "w", integer_x=True)
    labels = x_tick_labels(long)
    assert 5 <= len(labels) <= 10 and all(re.fullmatch(r"\d+", label) for label in labels)
    continuous = svg_chart("t", [{"name": "s", "points": [(0.1, 1.0), (0.9, 2.0)]}], "x", "y")
    assert any("." in label for label in x_tick_labels(continuous))
