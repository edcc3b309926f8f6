"""The privacy–utility frontier of ``bench compress``: every arm a point (test accuracy against gate
RMIA leakage, seed means with standard-error bars), the frontier the other arms draw, and the claim
that SafeCompress lies on or beyond it — checked in code, drawn as SVG (no dependency) and as PNG
(matplotlib, when installed). The JSON holds the points, so any figure can be redrawn from it."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Optional, Sequence

from safecompress.bench.plan import NEXT_DOWN, SAFECOMPRESS_ARMS
from safecompress.bench.results import CLAIM_DENSITY, CLAIM_TASK, summarize

COMPARABLE_POINTS = 0.5  # accuracy points below plain DST within which an arm competes on leakage
MIN_SEEDS = 5
CLAIMED_ARM = "sc-remedies"  # what `compress` runs
AXES = {"rmia_tpr": ("gate RMIA TPR @ 1 % FPR (%)", 100.0), "rmia_auc": ("gate RMIA AUC", 1.0)}


def frontier_points(records: Sequence[dict[str, Any]], task: str = CLAIM_TASK) -> list[dict[str, Any]]:
    """One point per (arm, density) of ``task``: seed mean and SE of accuracy, RMIA TPR and AUC."""
    points = []
    for row in summarize(records):
        if row["task"] != task or row["accuracy"]["mean"] is None:
            continue
        points.append({"arm": row["arm"], "density": row["density"], "seeds": row["seeds"], **{k: row[k] for k in ("accuracy", "rmia_tpr", "rmia_auc")}})
    return points


def pareto(points: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The points no other point beats on both accuracy (higher) and ``metric`` (lower), by accuracy."""

    def dominated(p: dict[str, Any]) -> bool:
        a, m = p["accuracy"]["mean"], p[metric]["mean"]
        return any(q["accuracy"]["mean"] >= a and q[metric]["mean"] <= m and (q["accuracy"]["mean"] > a or q[metric]["mean"] < m) for q in points)

    return sorted((p for p in points if not dominated(p)), key=lambda p: p["accuracy"]["mean"])


def frontier_at(front: Sequence[dict[str, Any]], metric: str, accuracy: float) -> Optional[float]:
    """The leakage the frontier reaches at ``accuracy``: linear between its neighbouring points, the
    least-leaky point's value below its range; None above every point (nothing reaches that accuracy)."""
    if not front or accuracy > front[-1]["accuracy"]["mean"]:
        return None
    if accuracy <= front[0]["accuracy"]["mean"]:
        return front[0][metric]["mean"]
    for low, high in zip(front, front[1:]):
        a0, a1 = low["accuracy"]["mean"], high["accuracy"]["mean"]
        if a0 <= accuracy <= a1:
            t = 0.0 if a1 == a0 else (accuracy - a0) / (a1 - a0)
            return low[metric]["mean"] + t * (high[metric]["mean"] - low[metric]["mean"])
    return None


def _competitors(points: Sequence[dict[str, Any]], arm: str, density: float) -> list[dict[str, Any]]:
    """Every other compressed model: the other arms at ``density`` and plain DST at any density."""
    return [p for p in points if p["arm"] != "dense" and not (p["arm"] == arm and p["density"] == density) and (p["density"] == density or p["arm"] in ("plain-dst", NEXT_DOWN))]


def check_frontier_claim(records: Sequence[dict[str, Any]], arm: str = CLAIMED_ARM, task: str = CLAIM_TASK, density: float = CLAIM_DENSITY) -> dict[str, Any]:
    """Issue 14's claim for ``arm`` at ``density``: (1) lower mean gate RMIA TPR@1 % FPR than every
    other arm whose mean test accuracy is within 0.5 point of plain DST's (or above it); (2) on or
    beyond the frontier the other arms draw, in TPR and in AUC; (3) over at least 5 seeds."""
    points = frontier_points(records, task)
    mine = next((p for p in points if p["arm"] == arm and p["density"] == density), None)
    plain = next((p for p in points if p["arm"] == "plain-dst" and p["density"] == density), None)
    if mine is None or plain is None:
        return {"arm": arm, "task": task, "density": density, "holds": None, "conditions": {}, "why": f"needs {arm} and plain-dst at d = {density:g}"}
    others = _competitors(points, arm, density)
    floor = plain["accuracy"]["mean"] - COMPARABLE_POINTS / 100
    comparable = [p for p in others if p["accuracy"]["mean"] >= floor]
    best = min(comparable, key=lambda p: p["rmia_tpr"]["mean"])
    conditions: dict[str, Any] = {
        "lowest_tpr_among_comparable": {
            "rule": f"mean RMIA TPR@1% of {arm} < every other arm with accuracy ≥ plain DST − {COMPARABLE_POINTS} point",
            "value": mine["rmia_tpr"]["mean"],
            "best_other": {"arm": best["arm"], "density": best["density"], "value": best["rmia_tpr"]["mean"]},
            "comparable": [f"{p['arm']}@{p['density']:g}" for p in comparable],
            "holds": mine["rmia_tpr"]["mean"] < best["rmia_tpr"]["mean"],
        }
    }
    for metric in AXES:
        reach = frontier_at(pareto(others, metric), metric, mine["accuracy"]["mean"])
        conditions[f"on_or_beyond_frontier_{metric}"] = {
            "rule": f"{arm}'s {metric} ≤ the other arms' frontier at its accuracy (beyond it when none is as accurate)",
            "value": mine[metric]["mean"],
            "frontier": reach,
            "holds": reach is None or mine[metric]["mean"] <= reach,
        }
    seeds = len(mine["seeds"])
    conditions["seeds"] = {"rule": f"at least {MIN_SEEDS} seeds", "value": seeds, "holds": seeds >= MIN_SEEDS}
    return {"arm": arm, "task": task, "density": density, "seeds": mine["seeds"], "conditions": conditions, "holds": all(c["holds"] for c in conditions.values())}


# --- drawing --------------------------------------------------------------------------------------
def _label(point: dict[str, Any]) -> str:
    return point["arm"] if point["density"] == CLAIM_DENSITY else f"{point['arm']} d={point['density']:g}"


def _colour(point: dict[str, Any]) -> str:
    if point["arm"] in SAFECOMPRESS_ARMS:
        return "#c0392b"
    return "#7f8c8d" if point["arm"] == "dense" else "#2c6fbb"


def frontier_svg(points: Sequence[dict[str, Any]], title: str = "privacy–utility frontier") -> str:
    """Two panels (accuracy against RMIA TPR@1 % FPR and against RMIA AUC) as one SVG document."""
    width, height, pad = 380, 340, 52
    panels = []
    for index, (metric, (axis, scale)) in enumerate(AXES.items()):
        xs = [p[metric]["mean"] * scale for p in points] + [(p[metric]["mean"] + (p[metric]["se"] or 0)) * scale for p in points]
        ys = [p["accuracy"]["mean"] * 100 for p in points] + [(p["accuracy"]["mean"] - (p["accuracy"]["se"] or 0)) * 100 for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        x0, x1 = x0 - 0.08 * (x1 - x0 or 1), x1 + 0.08 * (x1 - x0 or 1)
        y0, y1 = y0 - 0.08 * (y1 - y0 or 1), y1 + 0.08 * (y1 - y0 or 1)
        sx = lambda v: pad + (v - x0) / (x1 - x0) * (width - pad - 12)  # noqa: E731
        sy = lambda v: height - pad - (v - y0) / (y1 - y0) * (height - pad - 28)  # noqa: E731
        parts = [f'<g transform="translate({index * width},0)">', f'<rect x="{pad}" y="28" width="{width - pad - 12}" height="{height - pad - 28}" fill="none" stroke="#444"/>']
        for k in range(5):
            xv, yv = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
            parts.append(f'<text x="{sx(xv):.1f}" y="{height - pad + 16}" font-size="10" text-anchor="middle">{xv:.{1 if scale > 1 else 3}f}</text>')
            parts.append(f'<text x="{pad - 4}" y="{sy(yv) + 3:.1f}" font-size="10" text-anchor="end">{yv:.1f}</text>')
        parts.append(f'<text x="{(pad + width) / 2:.0f}" y="{height - 12}" font-size="11" text-anchor="middle">{escape(axis)} (lower is safer)</text>')
        parts.append(f'<text x="14" y="{height / 2:.0f}" font-size="11" text-anchor="middle" transform="rotate(-90 14 {height / 2:.0f})">test accuracy %</text>')
        front = pareto(_competitors(points, CLAIMED_ARM, CLAIM_DENSITY), metric)
        if len(front) > 1:
            path = " ".join(f"{sx(p[metric]['mean'] * scale):.1f},{sy(p['accuracy']['mean'] * 100):.1f}" for p in front)
            parts.append(f'<polyline points="{path}" fill="none" stroke="#2c6fbb" stroke-dasharray="4 3"/>')
        for p in points:
            cx, cy = sx(p[metric]["mean"] * scale), sy(p["accuracy"]["mean"] * 100)
            ex, ey = (p[metric]["se"] or 0) * scale, (p["accuracy"]["se"] or 0) * 100
            colour = _colour(p)
            parts.append(f'<line x1="{sx(p[metric]["mean"] * scale - ex):.1f}" y1="{cy:.1f}" x2="{sx(p[metric]["mean"] * scale + ex):.1f}" y2="{cy:.1f}" stroke="{colour}"/>')
            parts.append(f'<line x1="{cx:.1f}" y1="{sy(p["accuracy"]["mean"] * 100 - ey):.1f}" x2="{cx:.1f}" y2="{sy(p["accuracy"]["mean"] * 100 + ey):.1f}" stroke="{colour}"/>')
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}"><title>{escape(_label(p))}</title></circle>')
            parts.append(f'<text x="{cx + 5:.1f}" y="{cy - 5:.1f}" font-size="9" fill="{colour}">{escape(_label(p))}</text>')
        parts.append("</g>")
        panels.append("\n".join(parts))
    header = f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height}" viewBox="0 0 {2 * width} {height}" font-family="sans-serif">'
    caption = f'<text x="{width}" y="16" font-size="13" text-anchor="middle">{escape(title)}: seed means ± SE; red = SafeCompress, dashed = the frontier of every other compressed arm</text>'
    return "\n".join([header, '<rect width="100%" height="100%" fill="white"/>', caption, *panels, "</svg>"]) + "\n"


def plot_frontier_png(points: Sequence[dict[str, Any]], path: Path, title: str = "privacy–utility frontier") -> Path:
    """The same two panels as a PNG through matplotlib (an optional extra)."""
    from safecompress.plots import _figure, _save

    figure = _figure(11.0, 4.8)
    for index, (metric, (axis, scale)) in enumerate(AXES.items()):
        ax = figure.add_subplot(1, 2, index + 1)
        front = pareto(_competitors(points, CLAIMED_ARM, CLAIM_DENSITY), metric)
        if len(front) > 1:
            ax.plot([p[metric]["mean"] * scale for p in front], [p["accuracy"]["mean"] * 100 for p in front], linestyle="--", color="#2c6fbb", linewidth=1)
        for p in points:
            x, y = p[metric]["mean"] * scale, p["accuracy"]["mean"] * 100
            ax.errorbar(x, y, xerr=(p[metric]["se"] or 0) * scale, yerr=(p["accuracy"]["se"] or 0) * 100, fmt="o", color=_colour(p), markersize=4, capsize=2)
            ax.annotate(_label(p), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points", color=_colour(p))
        ax.set(xlabel=f"{axis} (lower is safer)", ylabel="test accuracy %")
    figure.suptitle(title)
    return _save(figure, Path(path))
