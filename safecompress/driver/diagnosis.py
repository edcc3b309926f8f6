"""Why a compressed model stayed red (METHOD.md §3.7), from what the run measured.

For each red gate test: its margin, what the loop tried for it (the remedies of its ladder, the
weights they reached, their measured effect on its margin, the attempts) and what the user can
change, backed by the judged checkpoints' own trade-off between utility and this test's margin.
"""

from __future__ import annotations

from typing import Any, Optional


def _remedy_history(decisions: list[dict[str, Any]], ladder: list[str]) -> list[dict[str, Any]]:
    """Per rung: the highest weight reached, the decisions it was on, its mean effect on the margin."""
    rows = []
    for name in ladder:
        entries = [d["remedies"][name] for d in decisions if name in d.get("remedies", {})]
        effects = [e["effect"] for e in entries if e.get("effect") is not None]
        rows.append(
            {
                "remedy": name,
                "max_weight": max((e["weight"] for e in entries), default=0.0),
                "decisions_on": sum(1 for e in entries if e["weight"] > 0),
                "mean_effect_on_margin": sum(effects) / len(effects) if effects else None,
                "stalled": any("stalled" in e["why"] for e in entries),
            }
        )
    return rows


def _trade_off(judged: list[dict[str, Any]], nodeid: str) -> dict[str, Any]:
    """What the judged checkpoints say about this test: its best margin, and the best utility at
    which it was green (if it ever was)."""
    points = [p for p in judged if p["margins"].get(nodeid) is not None]
    if not points:
        return {"judged_in_loop": False}
    safest = max(points, key=lambda p: p["margins"][nodeid])
    green = [p for p in points if nodeid not in p["red_tests"]]
    best_green = max(green, key=lambda p: p["utility"]) if green else None
    return {
        "judged_in_loop": True,
        "best_margin": safest["margins"][nodeid],
        "best_margin_at": {"attempt": safest["attempt"], "step": safest["step"], "utility": safest["utility"], "red_tests": safest["red_tests"]},
        "green_checkpoints": len(green),
        "best_utility_when_green": None
        if best_green is None
        else {"attempt": best_green["attempt"], "step": best_green["step"], "utility": best_green["utility"], "red_tests": best_green["red_tests"]},
    }


CHANCE_AUC = 0.5


def near_chance_limits(test: dict[str, Any]) -> list[dict[str, Any]]:
    """The AUC limits of ``test`` that sit within its own interval's half-width of chance (0.5).

    Such a limit asks for a model that leaks nothing the audit set can measure: a leak-free model's
    AUC scatters about 0.5 by that much, so no remedy strength or attempt count makes it reachable
    at useful accuracy. It happens when a relative target (the dense parent's value minus a required
    gain) starts from a parent that leaks little on the audit set."""
    found = []
    for check in test.get("checks", []):
        interval = check.get("interval")
        if check.get("op") != "<=" or not str(check.get("name", "")).endswith("auc") or not interval or check.get("limit") is None:
            continue
        noise = (interval[1] - interval[0]) / 2
        if check["limit"] < CHANCE_AUC + noise:
            found.append({"check": check["name"], "limit": check["limit"], "chance": CHANCE_AUC, "noise": round(noise, 6)})
    return found


def _advice(test: dict[str, Any], trade: dict[str, Any], remedies: list[dict[str, Any]], settings: dict[str, Any], near_chance: list[dict[str, Any]]) -> list[str]:
    if "performance" in test.get("markers", []):
        return _performance_advice(trade, settings)
    advice = [
        f"its limit {c['check']} <= {c['limit']:.4f} is within the audit set's noise of chance ({c['chance']:g} ± {c['noise']:.3f}): only a model that leaks nothing measurable passes it, "
        "whatever the remedies; a target relative to the dense parent asks this of a parent that leaks little"
        for c in near_chance
    ]
    if not trade["judged_in_loop"]:
        advice.append("this test runs only at the gate, so nothing in training could steer it: give it a cheap counterpart with a remedy (@safecompress.mark.cost('cheap'))")
    elif trade["best_utility_when_green"] is not None:
        point = trade["best_utility_when_green"]
        others = ", ".join(n.split("::")[-1] for n in point["red_tests"]) or "nothing else"
        advice.append(f"it was green at attempt {point['attempt']} step {point['step']} (utility {point['utility']:.4f}), where {others} was red: the suite's limits conflict on this model")
    else:
        advice.append(f"no judged checkpoint got it green; the closest was margin {trade['best_margin']:+.4f} at utility {trade['best_margin_at']['utility']:.4f}")
    if test.get("remedy") is None:
        advice.append("it declares no remedy, so only selection could act on it: add @safecompress.mark.remedy(...)")
    elif remedies and all(r["max_weight"] > 0 for r in remedies[:1]):
        last = remedies[-1]
        if last["mean_effect_on_margin"] is not None and last["mean_effect_on_margin"] <= 0:
            advice.append(f"{last['remedy']} did not move the margin (mean effect {last['mean_effect_on_margin']:+.4f} per decision): a stronger remedy or another rung (mark.remedy('a', 'b'))")
        else:
            advice.append("the remedies moved it but not far enough: raise their max_weight, add --epochs, or more --attempts")
    if settings.get("density", 1.0) > 0.02:
        advice.append(f"a lower --density than {settings.get('density'):g} usually leaks less (docs/benchmark.md), at some accuracy")
    return advice


def _performance_advice(trade: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """A red performance test: the model is not useful enough; remedies only back off for it."""
    advice = []
    if trade["judged_in_loop"]:
        advice.append(f"its best judged margin was {trade['best_margin']:+.4f} (attempt {trade['best_margin_at']['attempt']} step {trade['best_margin_at']['step']})")
    advice.append(f"the model is not accurate enough at this density: a higher --density than {settings.get('density', 1.0):g}, or more --epochs")
    return advice


def diagnose(gate_tests: list[dict[str, Any]], decisions: list[dict[str, Any]], judged: list[dict[str, Any]], attempts: list[dict[str, Any]], settings: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The report's ``diagnosis``: None when the gate passed. Each red test is a *requirement missed*
    (or a test that broke); what training could do about it is read from the steering target that
    serves it (``mark.target(serves=...)``), the test the loop actually judged. Missed targets are
    listed apart: they steer, and do not make a run red."""
    red = [t for t in gate_tests if t["outcome"] in ("failed", "error")]
    if not red:
        return None
    tests = []
    for test in red:
        name = test["nodeid"].split("::")[-1]
        serving = [t for t in gate_tests if t.get("role") == "target" and t.get("serves") == name]
        steering = serving[0] if serving else test
        ladder = [steering["remedy"]] + [rung for rung, _ in steering.get("fallback_remedies", [])] if steering.get("remedy") else []
        remedies = _remedy_history(decisions, ladder)
        trade = _trade_off(judged, steering["nodeid"])
        near_chance = near_chance_limits(steering)
        tests.append(
            {
                "nodeid": test["nodeid"],
                "kind": "requirement missed" if test["outcome"] == "failed" else "error",
                "margin": test["margin"],
                "message": test["message"],
                "targets": [{"nodeid": t["nodeid"], "outcome": t["outcome"], "margin": t["margin"]} for t in serving],
                "remedies": remedies,
                "trade_off": trade,
                "near_chance": near_chance,
                "advice": _advice(steering, trade, remedies, settings, near_chance),
            }
        )
    missed = [{"nodeid": t["nodeid"], "serves": t.get("serves"), "margin": t["margin"], "message": t["message"]} for t in gate_tests if t["outcome"] == "missed"]
    return {"red_tests": tests, "missed_targets": missed, "attempts": len(attempts), "judged_checkpoints": len(judged)}


def _target_line(target: dict[str, Any]) -> str:
    margin = "–" if target["margin"] is None else f"{target['margin']:+.4f}"
    if target["outcome"] == "passed":
        return f"its steering target {target['nodeid'].split('::')[-1]} was met on the shipped model (margin {margin}): meeting it did not predict the requirement here"
    return f"its steering target {target['nodeid'].split('::')[-1]} was {target['outcome']} on the shipped model (margin {margin})"


def diagnosis_lines(diagnosis: Optional[dict[str, Any]]) -> list[str]:
    """The diagnosis as plain lines (terminal and Markdown)."""
    if not diagnosis:
        return []
    lines = [f"Why it is red ({diagnosis['attempts']} attempt(s), {diagnosis['judged_checkpoints']} judged checkpoints):"]
    for test in diagnosis["red_tests"]:
        margin = "–" if test["margin"] is None else f"{test['margin']:+.4f}"
        lines.append(f"- {test.get('kind', 'requirement missed')}: {test['nodeid']}: margin {margin} ({test['message']})")
        lines += [f"  - {_target_line(target)}" for target in test.get("targets", [])]
        for remedy in test["remedies"]:
            if not remedy["decisions_on"]:
                lines.append(f"  - not tried: {remedy['remedy']} (never switched on at a decision)")
                continue
            effect = "–" if remedy["mean_effect_on_margin"] is None else f"{remedy['mean_effect_on_margin']:+.4f}"
            stalled = ", stalled at its cap" if remedy["stalled"] else ""
            lines.append(f"  - tried {remedy['remedy']}: up to weight {remedy['max_weight']:g}, on at {remedy['decisions_on']} decisions, mean effect on the margin {effect} per decision{stalled}")
        lines += [f"  - {line}" for line in test["advice"]]
    for target in diagnosis.get("missed_targets", []):
        margin = "–" if target["margin"] is None else f"{target['margin']:+.4f}"
        serves = f" (serves {target['serves']})" if target.get("serves") else ""
        lines.append(f"- steering target missed, which does not make the run red: {target['nodeid']}{serves}: margin {margin}")
    return lines
