"""The frontier claim in code: which arms compete, the Pareto front, interpolation, and the drawings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from safecompress.bench import frontier


def record(arm: str, seed: int, density: float, accuracy: float, tpr: float, auc: float) -> dict:
    jitter = 0.001 * (seed % 3 - 1)

    def attack(value_auc: float, value_tpr: float) -> dict:
        return {"auc": {"value": value_auc, "low": value_auc - 0.03, "high": value_auc + 0.03}, "tpr_at_1pct_fpr": {"value": value_tpr, "low": 0.0, "high": value_tpr + 0.02, "reliable": True}}

    return {
        "task": "fashion-mnist",
        "seed": seed,
        "density": density,
        "arm": arm,
        "test_accuracy": {"value": accuracy + jitter, "low": accuracy - 0.01, "high": accuracy + 0.01},
        "attacks": {name: attack(auc + jitter, tpr + jitter) for name in ("rmia", "lira", "loss", "mentr")},
        "seconds": 10.0,
        "safety_test_share": 0.0,
        "timers": None,
        "diagnostics": None,
    }


def runs(seeds: int = 5, **overrides: tuple) -> list[dict]:
    """Arms as (density, accuracy, TPR, AUC); ``overrides`` replace or add arms."""
    arms = {
        "dense": (1.0, 0.83, 0.10, 0.68),
        "plain-dst": (0.1, 0.82, 0.08, 0.66),
        "relaxloss-always": (0.1, 0.816, 0.05, 0.58),
        "dp-sgd-eps8": (0.1, 0.60, 0.012, 0.51),
        "sc-remedies": (0.1, 0.818, 0.04, 0.59),
        **overrides,
    }
    return [record(arm, seed, *values) for seed in range(seeds) for arm, values in arms.items()]


def test_pareto_and_interpolation() -> None:
    points = frontier.frontier_points(runs())
    front = frontier.pareto([p for p in points if p["arm"] in ("plain-dst", "relaxloss-always", "dp-sgd-eps8")], "rmia_tpr")
    assert [p["arm"] for p in front] == ["dp-sgd-eps8", "relaxloss-always", "plain-dst"]
    dominated = frontier.pareto(frontier.frontier_points(runs(**{"one-shot": (0.1, 0.70, 0.09, 0.67)})), "rmia_tpr")
    assert "one-shot" not in {p["arm"] for p in dominated}
    halfway = (front[1]["accuracy"]["mean"] + front[2]["accuracy"]["mean"]) / 2
    assert frontier.frontier_at(front, "rmia_tpr", halfway) == pytest.approx((front[1]["rmia_tpr"]["mean"] + front[2]["rmia_tpr"]["mean"]) / 2)
    assert frontier.frontier_at(front, "rmia_tpr", 0.99) is None  # nothing that accurate: beyond the frontier
    assert frontier.frontier_at(front, "rmia_tpr", 0.10) == front[0]["rmia_tpr"]["mean"]


def test_claim_holds_when_sc_leaks_least_among_comparable_and_is_beyond_the_frontier() -> None:
    claim = frontier.check_frontier_claim(runs())
    assert claim["holds"] is True, claim
    lowest = claim["conditions"]["lowest_tpr_among_comparable"]
    assert lowest["best_other"]["arm"] == "relaxloss-always"  # within 0.5 point of plain DST
    assert "dp-sgd-eps8@0.1" not in lowest["comparable"]  # far less accurate: competes only on the frontier


def test_claim_fails_on_a_comparable_arm_that_leaks_less() -> None:
    claim = frontier.check_frontier_claim(runs(**{"relaxloss-always": (0.1, 0.819, 0.03, 0.57)}))
    assert claim["holds"] is False
    assert not claim["conditions"]["lowest_tpr_among_comparable"]["holds"]
    assert not claim["conditions"]["on_or_beyond_frontier_rmia_tpr"]["holds"]  # and it dominates the SC point


def test_claim_fails_below_the_frontier_and_with_too_few_seeds() -> None:
    below = frontier.check_frontier_claim(runs(**{"adv-always": (0.1, 0.80, 0.045, 0.55), "dp-sgd-eps1": (0.1, 0.83, 0.045, 0.60)}))
    assert below["conditions"]["on_or_beyond_frontier_rmia_auc"]["holds"] is False
    few = frontier.check_frontier_claim(runs(seeds=3))
    assert few["conditions"]["seeds"] == {"rule": "at least 5 seeds", "value": 3, "holds": False} and few["holds"] is False
    assert frontier.check_frontier_claim([r for r in runs() if r["arm"] != "plain-dst"])["holds"] is None


def test_svg_is_well_formed_with_a_point_per_arm_in_each_panel() -> None:
    points = frontier.frontier_points(runs())
    svg = ET.fromstring(frontier.frontier_svg(points))
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 2 * len(points)
    assert {c.find("{http://www.w3.org/2000/svg}title").text.split(" d=")[0] for c in circles} == {p["arm"] for p in points}


def test_frontier_from_the_command_line(tmp_path: Path) -> None:
    from safecompress.bench import compress as bench
    from safecompress.bench import plan as bench_plan
    from safecompress.cli import main

    results = bench._assemble(bench_plan.make_plan(seeds=(0, 1, 2, 3, 4), claim_only=True), runs(), {"compress": {}, "thresholds": {}}, "cpu", 60.0)
    (tmp_path / "r.json").write_text(json.dumps({**results, "command": "safecompress bench compress"}))
    code = main(["bench", "compress", "--merge", str(tmp_path / "r.json"), "--json", str(tmp_path / "m.json"), "--markdown", str(tmp_path / "m.md"), "--frontier", str(tmp_path / "f.svg")])
    assert code == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["frontier"]["claim"]["holds"] is True and len(merged["frontier"]["points"]) == 5
    assert "Frontier claim" in (tmp_path / "m.md").read_text()
    ET.parse(tmp_path / "f.svg")
    pytest.importorskip("matplotlib")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
