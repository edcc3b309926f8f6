"""Writing a compression run's report: JSON (the record), Markdown (for CI summaries), HTML (charts).

Charts are inline SVG drawn here, so a report needs no plotting library and opens anywhere.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from safecompress.driver.diagnosis import diagnosis_lines
from safecompress.fsutil import atomic_write_text, json_safe
from safecompress.textsafe import markdown_safe


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _interval(values: Optional[Sequence[Optional[float]]]) -> str:
    if not values or values[0] is None:
        return ""
    return f" [{_fmt(values[0], 3)}, {_fmt(values[1], 3)}]"


def density_line(report: dict[str, Any]) -> str:
    """Both densities, named the same in every output (maskable weights / whole model)."""
    compressed, dense = report["models"]["compressed"], report["models"]["dense"]
    share = compressed["maskable_share"]
    kept = f", the masks keep {_fmt(compressed['masked_density'])}" if compressed.get("masked_density") is not None else ""
    return (
        f"maskable density {_fmt(compressed['maskable_density'])} (nonzero{kept}; dense parent {_fmt(dense['maskable_density'])}); "
        f"whole-model density {_fmt(compressed['whole_model_density'])} (dense parent {_fmt(dense['whole_model_density'])}); "
        f"maskable weights are {100 * share:.0f} % of the {compressed['parameters']:,} parameters"
    )


def processes_text(report: dict[str, Any]) -> str:
    """The suffix naming a distributed run's world size (empty for one process)."""
    processes = report.get("processes", 1)
    return f", {processes} processes (torchrun, data-parallel)" if processes > 1 else ""


def shipped_line(report: dict[str, Any]) -> str:
    shipped = report.get("shipped")
    if shipped is None:
        return "shipped: the last step's weights (no checkpoint was judged)"
    colour = "passing" if shipped["passed"] else "RED (no judged checkpoint passed: " + ", ".join(n.split("::")[-1] for n in shipped["red_tests"]) + ")"
    judged = len(report.get("judged", []))
    where = f"attempt {shipped['attempt']} step {shipped['step']} ({shipped['kind']})"
    return f"shipped: the best {colour} checkpoint of {judged} judged, {where}, utility {_fmt(shipped['utility'])}, risk {shipped['risk']:+.4f}"


def remedy_series(report: dict[str, Any]) -> dict[str, list[tuple[int, float, Optional[float], Optional[float]]]]:
    """Per remedy: (decision index, weight, margin of its ladder's tests, measured effect), over every attempt."""
    series: dict[str, list[tuple[int, float, Optional[float], Optional[float]]]] = {}
    decisions = [report["baseline"].get("decision")] if report["baseline"].get("decision") else []
    decisions += sorted(report["updates"] + report["final_checks"], key=lambda d: (d.get("attempt", 1), d["step"]))
    for index, decision in enumerate(decisions):
        for name, entry in decision.get("remedies", {}).items():
            series.setdefault(name, []).append((index, entry["weight"], entry.get("margin"), entry.get("effect")))
    return series


def comparison_cells(report: dict[str, Any]) -> list[dict[str, str]]:
    """Each comparison row's parts as text: values and intervals apart, so a narrow table can stack them."""
    return [
        {
            "metric": f"{row['metric']} ({row.get('evidence', 'gate')})",
            "limit": row.get("limit", ""),
            "dense": _fmt(row["dense"]),
            "dense_interval": _interval(row["dense_interval"]).strip(),
            "compressed": _fmt(row["compressed"]),
            "compressed_interval": _interval(row["compressed_interval"]).strip(),
            "delta": f"{row['delta']:+.4f}",
            "delta_interval": _interval(row["delta_interval"]).strip(),
            "dense_outcome": row["dense_outcome"] or "",
            "compressed_outcome": row["compressed_outcome"] or "",
        }
        for row in report["comparison"]
    ]


def outcome_text(cells: dict[str, str], short: bool = False) -> str:
    """ "passed → failed" on a check's row, empty on a metric no check judged."""
    if not (cells["dense_outcome"] or cells["compressed_outcome"]):
        return ""
    words = {"passed": "ok", "failed": "FAIL", "met": "met", "missed": "MISS"} if short else {}
    return " → ".join(words.get(cells[k], cells[k]) or "–" for k in ("dense_outcome", "compressed_outcome"))


def comparison_rows(report: dict[str, Any]) -> list[list[str]]:
    def joined(value: str, interval: str) -> str:
        return f"{value} {interval}" if interval else value

    return [
        [c["metric"], c["limit"], joined(c["dense"], c["dense_interval"]), joined(c["compressed"], c["compressed_interval"]), joined(c["delta"], c["delta_interval"]), outcome_text(c)]
        for c in comparison_cells(report)
    ]


def budget_line(budget: dict[str, Any]) -> str:
    measured = "fits" if budget["fits"] else "does not fit"
    trimmed = "; ".join(budget["notes"]) or "nothing trimmed"
    return f"budget: {budget['budget']:g}× the work of training alone, predicted {budget['predicted']:.2f}× ({measured}): {trimmed}"


def render_markdown(report: dict[str, Any]) -> str:
    compressed, dense = report["models"]["compressed"], report["models"]["dense"]
    verdict = "✅ gate passed" if compressed["passed"] else "❌ gate failed"
    timings = report["timings"]
    lines = [
        f"# SafeCompress report — {verdict}",
        "",
        f"- {markdown_safe(density_line(report))}",
        f"- {markdown_safe(shipped_line(report))}",
        f"- test accuracy: dense {_fmt(dense['test_accuracy']['value'])} → compressed {_fmt(compressed['test_accuracy']['value'])}",
        f"- topology updates: {len(report['updates'])}; seed {report['settings']['seed']}; device {markdown_safe(report['device'] + processes_text(report))}",
        f"- time: {timings['total_s']:.1f}s in all; training {timings['train_s']:.1f}s, candidate probing {timings['probe_s']:.1f}s, "
        f"in-loop safety tests {timings['tests_s']:.1f}s (overhead {100 * timings['overhead_fraction']:.0f} % of the loop), "
        f"baseline and reference models {timings['setup_s']:.1f}s",
        *([f"- {markdown_safe(budget_line(report['budget']))}"] if report.get("budget") else []),
        "",
        "| metric (evidence) | role and limit | dense | compressed | Δ (compressed − dense) | outcome dense → compressed |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join([markdown_safe(row[0]), markdown_safe(row[1]), *row[2:]]) + " |" for row in comparison_rows(report)]  # the metric's name is the test's text
    lines += [
        "",
        "Intervals are 95 %; Δ intervals are conservative (difference of independent intervals); a check on a difference (`…_minus_dense`) carries its own paired interval. "
        "Evidence: *in-loop* numbers come from the cheap tests' small audit set (one reference model), *gate* numbers from the strong attacks on every member and non-member. "
        "Requirements decide the verdict; targets steer training and are reported as met or missed.",
        "",
    ]
    if report.get("diagnosis"):
        lines += ["## Why it is red", ""] + [markdown_safe(line) for line in diagnosis_lines(report["diagnosis"])[1:]] + [""]
    roles = report["roles"]
    utility, risk = (markdown_safe(", ".join(roles[role]) or "none") for role in ("utility", "risk"))
    lines += ["## Metric roles", "", f"- utility (selection maximises): {utility}", f"- risk (selection minimises): {risk}"]
    lines += [f"- ⚠ {markdown_safe(warning)}" for warning in report["warnings"]] + [""]
    if len(report["attempts"]) > 1:
        lines += ["## Attempts", "", "| attempt | started with | best checkpoint so far (all attempts) | passed |", "|---|---|---|---|"]
        for attempt in report["attempts"]:
            plan = markdown_safe(", ".join(f"{k}={v:g}" for k, v in attempt["plan"]["weights"].items()) or "nothing")
            best = attempt["best_so_far"]
            where = "–" if best is None else f"step {best['step']} ({best['kind']}), utility {_fmt(best['utility'])}, risk {best['risk']:+.4f}"
            lines.append(f"| {attempt['attempt']} | {plan} | {where} | {'yes' if attempt['passed'] else 'no'} |")
        lines.append("")
    if report["updates"]:
        lines += ["## Updates", "", "| attempt | update | judged before it | winner | why | remedy weights |", "|---|---|---|---|---|---|"]
        for update in report["updates"]:
            weights = markdown_safe(", ".join(f"{k}={v:g}" for k, v in update["remedy_weights"].items()) or "–")
            judged = update.get("checkpoint") or {}
            red = sum(1 for o in judged.get("outcomes", {}).values() if o in ("failed", "error"))
            before = f"utility {_fmt(judged.get('utility'))}, {red} red" if judged else "–"
            lines.append(f"| {update.get('attempt', 1)} | {update['update']} | {before} | {markdown_safe(update['winner'])} | {markdown_safe(update['why'])} | {weights} |")
    if report.get("final_checks"):
        lines += [
            "",
            "## Final phase",
            "",
            f"The topology was final; the cheap tests judged {len(report['final_checks'])} checkpoints.",
            "",
            "| attempt | step | utility | risk | failures | shipping | remedy weights |",
            "|---|---|---|---|---|---|---|",
        ]
        for check in report["final_checks"]:
            tested = check["candidates"][0]
            weights = markdown_safe(", ".join(f"{k}={v:g}" for k, v in check["remedy_weights"].items()) or "–")
            kept = markdown_safe(check["kept"] or "–")
            lines.append(f"| {check.get('attempt', 1)} | {check['step']} | {_fmt(tested['utility'])} | {tested['risk']:+.4f} | {tested['failures']:g} | {kept} | {weights} |")
    series = remedy_series(report)
    if series:
        lines += ["", "## Remedies over time", "", "| remedy | decision: weight (margin, effect) |", "|---|---|"]
        for name, points in series.items():
            cells = "; ".join(f"{i}: {w:g} ({_fmt(m)}, {_fmt(e)})" for i, w, m, e in points)
            lines.append(f"| {markdown_safe(name)} | {markdown_safe(cells)} |")
    if report["events"]:
        lines += ["", "## Events", ""] + [f"- {markdown_safe(event)}" for event in report["events"]]
    lines += ["", "Members/non-members/population are recorded by index and SHA-256 in `report.json` (`data`), for re-audits.", ""]
    return "\n".join(lines)


# --- SVG ------------------------------------------------------------------------------------------
def _scale(values: Iterable[float], pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if v is not None and v == v]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    span = high - low
    return low - pad * span, high + pad * span


def svg_chart(title: str, series: list[dict[str, Any]], x_label: str, y_label: str, log_axes: bool = False, width: int = 460, height: int = 300, integer_x: bool = False) -> str:
    """A small line/scatter chart. Each series: {"name", "points": [(x, y)], "style": "line"|"dots", "color"}.
    ``integer_x``: a discrete x axis (updates, decisions) gets ticks at whole numbers only."""
    import math

    left, right, top, bottom = 56, 12, 28, 40

    def tx(v: float) -> float:
        return math.log10(max(v, 1e-4)) if log_axes else v

    xs = [tx(x) for s in series for x, _ in s["points"]]
    ys = [tx(y) for s in series for _, y in s["points"]]
    x0, x1 = (math.log10(1e-4), 0.0) if log_axes else _scale(xs)
    y0, y1 = (math.log10(1e-4), 0.0) if log_axes else _scale(ys)

    def px(x: float) -> float:
        return left + (tx(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (tx(y) - y0) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#999"/>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="14" y="{height / 2}" text-anchor="middle" transform="rotate(-90 14 {height / 2})">{html.escape(y_label)}</text>',
    ]
    ticks = [1e-4, 1e-3, 1e-2, 1e-1, 1.0] if log_axes else None
    x_ticks = ticks or [x0 + (x1 - x0) * i / 4 for i in range(5)]
    if integer_x and not log_axes:
        finite = [x for x in xs if x == x]
        whole = list(range(math.ceil(min(finite)), math.floor(max(finite)) + 1)) if finite else []  # the data's own range
        x_ticks = whole[:: max(1, math.ceil(len(whole) / 10))]
    for xv in x_ticks:
        parts.append(f'<text x="{px(xv):.1f}" y="{height - bottom + 14}" text-anchor="middle">{xv:.3g}</text>')
    for i in range(5):
        yv = ticks[i] if ticks else (y0 + (y1 - y0) * i / 4)
        parts.append(f'<text x="{left - 4}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    for index, s in enumerate(series):
        color = s.get("color", ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"][index % 5])
        points = [(px(x), py(y)) for x, y in s["points"] if y is not None and y == y]
        if s.get("style", "line") == "line" and points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        else:
            radius = s.get("radius", 3)
            for x, y in points:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}" fill-opacity="{s.get("opacity", 0.6)}"/>')
        parts.append(f'<text x="{left + 8}" y="{top + 14 + 13 * index}" fill="{color}">{html.escape(s["name"])}</text>')
    if log_axes:
        parts.append(f'<line x1="{px(1e-4):.1f}" y1="{py(1e-4):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#ccc" stroke-dasharray="4"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def candidate_charts(updates: list[dict[str, Any]]) -> str:
    charts = []
    for key, label in (("utility", "in-loop utility"), ("risk", "in-loop risk (Σ distance to limits)")):
        judged = [(u, c) for u in updates for c in u["candidates"] if len(u["candidates"]) > 1 or c.get("outcomes")]  # a sole candidate is not judged
        all_points = [(u["update"], c[key]) for u, c in judged]
        winners = [(u["update"], c[key]) for u, c in judged if c["name"] == u["winner"]]
        charts.append(
            svg_chart(
                f"{label} of every candidate",
                [
                    {"name": "candidates", "points": all_points, "style": "dots", "color": "#999", "opacity": 0.7},
                    {"name": "winners", "points": winners, "style": "dots", "color": "#d62728", "radius": 4, "opacity": 1.0},
                ],
                "topology update",
                key,
                integer_x=True,
            )
        )
    return "\n".join(charts)


def remedy_charts(report: dict[str, Any]) -> str:
    """Remedy weights and their tests' margins at every decision (baseline first, all attempts)."""
    series = remedy_series(report)
    if not series:
        return ""
    weights = [{"name": name, "points": [(i, w) for i, w, _, _ in points]} for name, points in series.items()]
    by_points: dict[tuple, list[str]] = {}  # the rungs of one ladder share their tests' margin: one line for them
    for name, points in series.items():
        by_points.setdefault(tuple((i, m) for i, _, m, _ in points if m is not None), []).append(name)
    margins = [{"name": f"margin of {', '.join(names)}", "points": list(points)} for points, names in by_points.items() if points]
    weight_chart = svg_chart("remedy weight at each decision", weights, "decision", "weight", integer_x=True)
    return "\n".join([weight_chart, svg_chart("its tests' margin (≥ 0: green)", margins, "decision", "margin", integer_x=True)])


def judged_charts(report: dict[str, Any]) -> str:
    """Every checkpoint the cheap tests judged (the shipping candidates): risk over the run, each
    attempt its own line, and utility against risk, passing ones apart and the shipped one marked."""
    judged = report.get("judged") or []
    if not judged:
        return ""
    order = sorted(range(len(judged)), key=lambda i: (judged[i]["attempt"], judged[i]["step"]))
    by_attempt: dict[int, list[tuple[int, float]]] = {}
    for position, index in enumerate(order, start=1):
        by_attempt.setdefault(judged[index]["attempt"], []).append((position, judged[index]["risk"]))
    over_time = [{"name": f"attempt {attempt}", "points": points} for attempt, points in sorted(by_attempt.items())]
    shipped = report.get("shipped") or {}
    is_shipped = [j["attempt"] == shipped.get("attempt") and j["step"] == shipped.get("step") for j in judged]
    trade_off = [
        {"name": "red", "points": [(j["utility"], j["risk"]) for j in judged if not j["passed"]], "style": "dots", "color": "#999", "opacity": 0.8},
        {"name": "passing", "points": [(j["utility"], j["risk"]) for j in judged if j["passed"]], "style": "dots", "color": "#2ca02c", "opacity": 0.9},
        {"name": "shipped", "points": [(j["utility"], j["risk"]) for j, ship in zip(judged, is_shipped) if ship], "style": "dots", "color": "#000000", "radius": 5, "opacity": 1.0},
    ]
    return "\n".join(
        [
            svg_chart("risk of each judged checkpoint (0: every test green)", over_time, "judged checkpoint, in training order", "risk", integer_x=True),
            svg_chart("judged checkpoints: utility against risk", trade_off, "utility", "risk"),
        ]
    )


def recorded_rocs(test: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ROC curves a test recorded, by attack: ``record.attack`` keeps them under
    ``info["rocs"]``; a test that noted one ``roc`` by hand is drawn under its own name."""
    info = test.get("info", {})
    rocs = dict(info.get("rocs") or {})
    if info.get("roc") and not rocs:
        rocs[test["nodeid"].split("::")[-1]] = info["roc"]
    return rocs


def roc_charts(report: dict[str, Any]) -> str:
    """Log-scale ROC curves of every recorded attack, dense and compressed on one chart."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for label in ("dense", "compressed"):
        for test in report["models"][label]["tests"]:
            for name, roc in recorded_rocs(test).items():
                points = [(f, t) for f, t in zip(roc["fpr"], roc["tpr"]) if f is not None and t is not None and f > 0]
                curves.setdefault(name, []).append({"name": label, "points": points})
    return "\n".join(svg_chart(f"ROC — {name}", series, "FPR", "TPR", log_axes=True) for name, series in curves.items())


def render_html(report: dict[str, Any]) -> str:
    rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in comparison_rows(report))
    compressed = report["models"]["compressed"]
    verdict = "gate passed" if compressed["passed"] else "gate failed"
    versions = f"safecompress {html.escape(report['versions']['safecompress'])}, torch {html.escape(report['versions']['torch'])}"
    lines = diagnosis_lines(report.get("diagnosis"))
    diagnosis_html = ("<h2>Why it is red</h2><pre>" + html.escape("\n".join(lines[1:])) + "</pre>") if lines else ""
    warnings = "".join(f"<p>⚠ {html.escape(w)}</p>" for w in report.get("warnings", []))
    diagnosis_html += warnings
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>SafeCompress report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}} .charts svg{{margin:4px}}</style>
</head><body>
<h1>SafeCompress report — {verdict}</h1>
<p>{html.escape(density_line(report))}; {len(report["updates"])} topology updates, seed {report["settings"]["seed"]}, device {html.escape(report["device"] + processes_text(report))}, {versions}</p>
<p>{html.escape(shipped_line(report))}</p>
{diagnosis_html}
<table><tr><th>metric (evidence)</th><th>role, limit</th><th>dense</th><th>compressed</th><th>Δ</th><th>outcome</th></tr>
{rows}
</table>
<h2>Membership ROC (log scale)</h2><div class="charts">{roc_charts(report)}</div>
<h2>Judged checkpoints (what could ship)</h2><div class="charts">{judged_charts(report)}</div>
<h2>Candidates at each update (winners in red)</h2><div class="charts">{candidate_charts(report["updates"])}</div>
<h2>Remedies over time</h2><div class="charts">{remedy_charts(report)}</div>
<p>Every decision, with every candidate's numbers, is in <code>decisions.jsonl</code>; the member/non-member/population indices and hashes are in <code>report.json</code>.</p>
</body></html>
"""


def write_reports(report: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / "report.json", json.dumps(json_safe(report), indent=2, default=str) + "\n")
    atomic_write_text(out / "report.md", render_markdown(report))
    atomic_write_text(out / "report.html", render_html(report))
