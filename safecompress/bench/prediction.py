"""How well in-loop evidence predicts the gate (issue 28, item 2): at every judged checkpoint of a
SafeCompress arm the requirements run too, beside the cheap tests the loop judges, so each
checkpoint has its steering targets' outcomes and the gate's verdict on the same weights.

Opt-in (``bench compress --gate-checkpoints``): it adds the gate's cost to every judged checkpoint.
Judging leaves the training's random streams and the loop's decisions as they were (the runner
restores the global generators around every test), so the arm's run is the one it would be without.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

#: Labels the loop gives its judged checkpoints (``CompressionLoop._judge``); candidates' differ.
JUDGED_LABELS = ("the model after its retraining segment", "final phase:")

#: (steering target, the requirement it serves, the in-loop metric, the gate metric) the summary pairs.
PAIRS = (
    ("test_rmia_in_loop", "test_rmia_gate", "rmia1_auc", "rmia_auc"),
    ("test_accuracy", "test_held_out_accuracy", "accuracy_confirm", "test_accuracy"),
    ("test_loss_attack", "test_no_more_leaky_than_dense", "loss_auc", "loss_auc_minus_dense"),
)


def judged(label: str) -> bool:
    return any(mark in label for mark in JUDGED_LABELS)


def gating_every_checkpoint(session: Any, evaluate: Callable[[Any, str], list[Any]], into: list[dict[str, Any]]) -> Callable[[Any, str], list[Any]]:
    """``evaluate`` (the loop's judgement), plus the requirements at each judged checkpoint, whose
    outcomes and metrics go to ``into``; the loop sees only ``evaluate``'s reports."""

    def evaluate_and_gate(model: Any, label: str) -> list[Any]:
        reports = evaluate(model, label)
        if judged(label):
            gate = session.run(select=lambda item: item.role == "requirement")
            model.train()
            into.append(
                {
                    "label": label,
                    "tests": {r.nodeid.split("::")[-1]: {"outcome": r.outcome, "metrics": {k: v for k, v in r.metrics.items() if isinstance(v, (int, float))}} for r in [*reports, *gate]},
                }
            )
        return reports

    return evaluate_and_gate


def _spearman(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    from scipy.stats import spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rho = float(spearmanr(xs, ys).statistic)
    return rho if math.isfinite(rho) else None


def prediction_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per pair of target and requirement, over every gated checkpoint of every record: the rank
    correlation of the in-loop and gate metrics (per run, then their mean), and how often a
    checkpoint whose target was met passed the requirement (and one whose target was missed)."""
    out: dict[str, Any] = {}
    for target, requirement, loop_metric, gate_metric in PAIRS:
        rhos, met, met_passed, missed, missed_passed = [], 0, 0, 0, 0
        for record in records:
            points = [c["tests"] for c in record.get("checkpoint_gates") or [] if target in c["tests"] and requirement in c["tests"]]
            xs = [p[target]["metrics"].get(loop_metric) for p in points]
            ys = [p[requirement]["metrics"].get(gate_metric) for p in points]
            paired = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
            rho = _spearman([x for x, _ in paired], [y for _, y in paired])
            if rho is not None:
                rhos.append(rho)
            for p in points:
                passed = p[requirement]["outcome"] == "passed"
                if p[target]["outcome"] == "passed":
                    met, met_passed = met + 1, met_passed + passed
                elif p[target]["outcome"] == "missed":
                    missed, missed_passed = missed + 1, missed_passed + passed
        out[target] = {
            "serves": requirement,
            "metrics": [loop_metric, gate_metric],
            "spearman_per_run": rhos,
            "spearman_mean": sum(rhos) / len(rhos) if rhos else None,
            "target_met": met,
            "requirement_passed_when_met": met_passed,
            "target_missed": missed,
            "requirement_passed_when_missed": missed_passed,
        }
    return out


def render_prediction(summary: dict[str, Any]) -> list[str]:
    """The table under the benchmark's results."""
    lines = [
        "| steering target | requirement | Spearman ρ (in-loop vs gate metric, mean over runs) | requirement passed when the target was met | … when it was missed |",
        "|---|---|---|---|---|",
    ]
    for target, row in summary.items():
        rho = "–" if row["spearman_mean"] is None else f"{row['spearman_mean']:+.2f} (n = {len(row['spearman_per_run'])})"
        met = f"{row['requirement_passed_when_met']}/{row['target_met']}" if row["target_met"] else "–"
        missed = f"{row['requirement_passed_when_missed']}/{row['target_missed']}" if row["target_missed"] else "–"
        lines.append(f"| `{target}` | `{row['serves']}` | {rho} | {met} | {missed} |")
    return lines
