"""Aggregating benchmark records over seeds (mean ± standard error, seed-paired differences), the
claim checks, and the README table."""

from __future__ import annotations

import math
import statistics
from typing import Any, Optional, Sequence

from safecompress.bench.plan import ARMS, NEXT_DOWN

CLAIM_TASK = "fashion-mnist"
CLAIM_DENSITY = 0.1
CLAIM_AUC_GAIN = 0.03
CLAIM_ACCURACY_POINTS = 1.0
VERDICT_SHARE = 0.8  # "green on at least 4 of 5 seeds"


def mean_se(values: Sequence[float]) -> dict[str, Any]:
    """Mean and standard error (sample sd / √n; None for one value)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "se": None, "n": 0}
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else None
    return {"mean": statistics.fmean(xs), "se": se, "n": len(xs)}


def metric_of(record: dict[str, Any], name: str) -> float:
    """A scalar from a record: ``accuracy``, ``seconds``, ``share``, ``<attack>_auc`` or ``<attack>_tpr``."""
    if name == "accuracy":
        return record["test_accuracy"]["value"]
    if name == "seconds":
        return record["seconds"]
    if name == "share":
        return record["safety_test_share"]
    attack, _, kind = name.rpartition("_")
    entry = record["attacks"][attack]
    return entry["auc"]["value"] if kind == "auc" else entry["tpr_at_1pct_fpr"]["value"]


SUMMARY_METRICS = ("accuracy", "rmia_auc", "rmia_tpr", "lira_auc", "lira_tpr", "loss_auc", "mentr_auc", "seconds", "share")


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, density, arm): mean ± SE over seeds of every metric, and mean per-run CIs."""
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["task"], record["density"], record["arm"]), []).append(record)
    order = {arm: i for i, arm in enumerate((*ARMS, NEXT_DOWN))}
    rows = []
    for (task, density, arm), group in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], order.get(kv[0][2], 99))):
        row: dict[str, Any] = {"task": task, "density": density, "arm": arm, "seeds": sorted(r["seed"] for r in group)}
        for name in SUMMARY_METRICS:
            row[name] = mean_se([metric_of(r, name) for r in group])
        row["rmia_auc_ci"] = [statistics.fmean(r["attacks"]["rmia"]["auc"][k] for r in group) for k in ("low", "high")]
        row["rmia_tpr_ci"] = [statistics.fmean(r["attacks"]["rmia"]["tpr_at_1pct_fpr"][k] for r in group) for k in ("low", "high")]
        row["accuracy_ci"] = [statistics.fmean(r["test_accuracy"][k] for r in group) for k in ("low", "high")]
        judged = [r for r in group if r.get("verdict") is not None]
        row["gate"] = {"green": sum(bool(r["verdict"]["passed"]) for r in judged), "n": len(judged)}
        rows.append(row)
    return rows


def paired(records: Sequence[dict[str, Any]], task: str, density_a: float, arm_a: str, density_b: float, arm_b: str, metric: str) -> dict[str, Any]:
    """Mean ± SE over seeds of metric(arm_a) − metric(arm_b), paired by seed."""

    def by_seed(density: float, arm: str) -> dict[int, float]:
        return {r["seed"]: metric_of(r, metric) for r in records if r["task"] == task and r["arm"] == arm and math.isclose(r["density"], density)}

    a, b = by_seed(density_a, arm_a), by_seed(density_b, arm_b)
    seeds = sorted(set(a) & set(b))
    return {**mean_se([a[s] - b[s] for s in seeds]), "seeds": seeds}


COST_RATIO_LIMIT = 1.5  # SafeCompress's wall time over plain DST's, measured in the same run


PHASE_LABELS = {"train": "training", "probe": "candidate probes", "tests": "in-loop tests"}


def cost_ratios(records: Sequence[dict[str, Any]], arms: Sequence[str], task: str = CLAIM_TASK, density: float = CLAIM_DENSITY) -> dict[str, Any]:
    """Per arm, mean ± SE over seeds of its wall time ÷ plain DST's (same seed, same run), and where
    it goes: each phase of the loop (training with remedies, candidate probes, in-loop tests) as a
    multiple of plain DST's wall time, and the attempts run."""
    by_seed = {r["seed"]: r["seconds"] for r in records if r["task"] == task and r["arm"] == "plain-dst" and math.isclose(r["density"], density)}

    def plain(record: dict[str, Any]) -> float:  # plain DST's time in the record's own run (a merge may pool runs)
        return float(record.get("plain_dst_seconds") or by_seed.get(record["seed"], 0.0))

    out = {}
    for arm in arms:
        runs = [r for r in records if r["task"] == task and r["arm"] == arm and math.isclose(r["density"], density) and plain(r) > 0]
        if runs:
            stat = mean_se([r["seconds"] / plain(r) for r in runs])
            timed = [r for r in runs if r.get("timers")]
            phases = {phase: mean_se([r["timers"][f"{phase}_s"] / plain(r) for r in timed])["mean"] for phase in ("train", "probe", "tests")} if timed else {}
            attempts = mean_se([len(r["attempts"]) for r in runs if r.get("attempts")])["mean"] if any(r.get("attempts") for r in runs) else None
            out[arm] = {**stat, "limit": COST_RATIO_LIMIT, "holds": stat["mean"] <= COST_RATIO_LIMIT, "phases": phases, "attempts": attempts}
    return out


def check_claim(records: Sequence[dict[str, Any]], arm: str, task: str = CLAIM_TASK, density: float = CLAIM_DENSITY, next_down: Optional[float] = None) -> dict[str, Any]:
    """The issue's acceptance claim for one SafeCompress arm, condition by condition, with the numbers."""
    next_down = next_down if next_down is not None else round(density / 2, 6)
    nd_arm = NEXT_DOWN if any(r["arm"] == NEXT_DOWN and r["task"] == task for r in records) else "plain-dst"
    gain = paired(records, task, density, "plain-dst", density, arm, "rmia_auc")  # DST − SC: positive is a gain
    accuracy = paired(records, task, density, arm, density, "plain-dst", "accuracy")
    vs_dense = paired(records, task, density, arm, 1.0, "dense", "rmia_auc")
    vs_accuracy_only = paired(records, task, density, arm, density, "accuracy-select", "rmia_auc")
    vs_next_down = paired(records, task, density, arm, next_down, nd_arm, "rmia_auc")
    conditions: dict[str, Any] = {}

    def cond(name: str, stat: dict[str, Any], ok: Optional[bool], rule: str) -> None:
        conditions[name] = {"rule": rule, **stat, "holds": ok}

    m = lambda s: s["mean"]  # noqa: E731
    cond("rmia_gain_vs_plain_dst", gain, None if m(gain) is None else m(gain) >= CLAIM_AUC_GAIN, f"mean(RMIA AUC plain DST − {arm}) ≥ {CLAIM_AUC_GAIN}")
    cond(
        "accuracy_vs_plain_dst",
        {k: (v * 100 if isinstance(v, float) else v) for k, v in accuracy.items()},
        None if m(accuracy) is None else m(accuracy) * 100 >= -CLAIM_ACCURACY_POINTS,
        f"mean test accuracy of {arm} ≥ plain DST − {CLAIM_ACCURACY_POINTS} point (values in points)",
    )
    cond("no_more_leaky_than_dense", vs_dense, None if m(vs_dense) is None else m(vs_dense) <= 0.0, f"mean(RMIA AUC {arm} − dense) ≤ 0")
    cond("beats_accuracy_only_selection", vs_accuracy_only, None if m(vs_accuracy_only) is None else m(vs_accuracy_only) < 0.0, f"mean(RMIA AUC {arm} − accuracy-only selection) < 0")
    cond("beats_plain_dst_next_density_down", vs_next_down, None if m(vs_next_down) is None else m(vs_next_down) < 0.0, f"mean(RMIA AUC {arm} at d={density:g} − plain DST at d={next_down:g}) < 0")
    worse = {}
    for metric in ("rmia_auc", "rmia_tpr", "lira_auc", "lira_tpr", "loss_auc", "mentr_auc"):
        diff = paired(records, task, density, arm, density, "plain-dst", metric)
        ok = None if diff["mean"] is None or diff["se"] is None else diff["mean"] <= diff["se"]
        worse[metric] = {**diff, "holds": ok}
    known = [w["holds"] for w in worse.values() if w["holds"] is not None]
    cond(
        "no_attack_worse_by_more_than_one_se",
        {"per_attack": worse, "mean": None, "se": None, "n": len(known)},
        (all(known) if known else None),
        f"for every attack metric, mean({arm} − plain DST) ≤ SE of the paired difference",
    )
    verdicts = [c["holds"] for c in conditions.values()]
    holds = None if any(v is None for v in verdicts) else all(verdicts)
    return {"arm": arm, "task": task, "density": density, "conditions": conditions, "holds": holds}


def check_verdict_claim(records: Sequence[dict[str, Any]], arm: str, task: str = CLAIM_TASK, density: float = CLAIM_DENSITY) -> dict[str, Any]:
    """Whether the gate tells the arms apart (issue 28): under the shipped requirements ``arm`` is
    green and plain DST red on at least 80 % of seeds, and ``arm`` keeps the frontier claim on the
    mean (RMIA TPR@1 % FPR at most half of plain DST's, test accuracy at most 0.5 point below it)."""

    def judged(name: str) -> list[dict[str, Any]]:
        return [r for r in records if r["task"] == task and r["density"] == density and r["arm"] == name and r.get("verdict") is not None]

    mine, plain = judged(arm), judged("plain-dst")
    green = sum(bool(r["verdict"]["passed"]) for r in mine)
    red = sum(not r["verdict"]["passed"] for r in plain)
    tpr = paired(records, task, density, arm, density, "plain-dst", "rmia_tpr")
    mine_tpr = mean_se([metric_of(r, "rmia_tpr") for r in records if r["task"] == task and r["density"] == density and r["arm"] == arm])
    plain_tpr = mean_se([metric_of(r, "rmia_tpr") for r in records if r["task"] == task and r["density"] == density and r["arm"] == "plain-dst"])
    accuracy = paired(records, task, density, arm, density, "plain-dst", "accuracy")
    conditions = {
        "green": {"rule": f"{arm}'s gate is green on ≥ {VERDICT_SHARE:.0%} of seeds", "value": f"{green}/{len(mine)}", "holds": (green >= VERDICT_SHARE * len(mine)) if mine else None},
        "plain_dst_red": {"rule": f"plain DST's gate is red on ≥ {VERDICT_SHARE:.0%} of seeds", "value": f"{red}/{len(plain)}", "holds": (red >= VERDICT_SHARE * len(plain)) if plain else None},
        "half_the_tpr": {
            "rule": f"mean RMIA TPR@1% FPR of {arm} ≤ ½ of plain DST's",
            "value": mine_tpr["mean"],
            "plain_dst": plain_tpr["mean"],
            "paired_difference": tpr["mean"],
            "holds": None if mine_tpr["mean"] is None or plain_tpr["mean"] is None else mine_tpr["mean"] <= plain_tpr["mean"] / 2,
        },
        "accuracy_within_half_a_point": {
            "rule": f"mean test accuracy of {arm} ≥ plain DST's − 0.5 point",
            "value": None if accuracy["mean"] is None else 100 * accuracy["mean"],
            "holds": None if accuracy["mean"] is None else 100 * accuracy["mean"] >= -0.5,
        },
    }
    verdicts = [c["holds"] for c in conditions.values()]
    holds = None if any(v is None for v in verdicts) else all(verdicts)
    seeds = sorted(r["seed"] for r in mine)
    return {"arm": arm, "task": task, "density": density, "seeds": seeds, "conditions": conditions, "holds": holds}


ARM_LABELS = {
    "dense": "dense parent",
    "one-shot": "one-shot magnitude + fine-tune",
    "plain-dst": "plain DST (SET, no tests)",
    "accuracy-select": "ablation: select by accuracy only (λ=0)",
    "sc-select": "SafeCompress, selection only",
    "sc-final-phase": "SafeCompress, selection + remedies, shipping from the final phase only (one attempt)",
    "sc-remedies": "SafeCompress, selection + remedies, best green from anywhere + attempts",
    "sc-no-selection": "ablation: steered remedies without selection (one candidate)",
    "sc-budget": "SafeCompress under --budget 1.3 (compress's configuration, trimmed to fit)",
    "early-stop": "early stopping on the performance tests (no privacy signal)",
    "adv-always": "plain DST + adversarial regularisation always on (λ = 0.1)",
    "relaxloss-always": "plain DST + RelaxLoss always on",
    "dp-sgd-eps8": "DP-SGD (Opacus), ε = 8, fixed parent masks",
    "dp-sgd-eps1": "DP-SGD (Opacus), ε = 1, fixed parent masks",
    NEXT_DOWN: "ablation: plain DST, next density down",
}


def _fmt(stat: dict[str, Any], scale: float = 1.0, digits: int = 3) -> str:
    if stat["mean"] is None:
        return "–"
    text = f"{stat['mean'] * scale:.{digits}f}"
    return text + (f" ± {stat['se'] * scale:.{digits}f}" if stat["se"] is not None else "")


def render_markdown(results: dict[str, Any], command: str = "safecompress bench compress") -> str:
    env = results["environment"]
    lines = [
        f"Command: `{command}` — {results['total_seconds'] / 60:.1f} min on {env['cpus']} CPU cores ({env['device']}, torch {env['torch']}, "
        f"{env['torch_threads']} torch threads{', OMP_NUM_THREADS=' + env['omp_num_threads'] if env.get('omp_num_threads') else ''}"
        f"{', code at ' + env['git'] if env.get('git') else ''}).",
        "",
        f"Values are mean ± standard error over seeds (no ± with one seed); brackets are the per-run 95 % intervals (DeLong for AUC, "
        f"Clopper–Pearson for TPR), averaged over seeds. Gate: RMIA and LiRA with {results['refs']} reference models trained by the same "
        "recipe, loss and modified-entropy attacks, all members vs all non-members. Accuracy in %, on the held-out test split. "
        "“tests %” is the share of the compression loop's time spent probing and testing candidates. "
        "“gate green” counts the seeds whose model passes the project's requirements as `safecompress test` judges them (– for the dense parent).",
        "",
    ]
    for task in results["tasks"]:
        rows = [r for r in results["summary"] if r["task"] == task["name"]]
        if not rows:
            continue
        seeds = sorted({s for r in rows for s in r["seeds"]})
        lines += [
            f"### {task['name']} ({task['data_options'].get('members')} members, {task['recipe']['epochs']} epochs, {task['model']}, seeds {', '.join(map(str, seeds))})"
            + (f" — {task['note']}" if task.get("note") else ""),
            "",
            "| arm | density | test acc % | RMIA AUC | RMIA TPR@1%FPR % | LiRA AUC | loss AUC | mentr AUC | gate green | wall s | tests % |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            auc_ci = f" [{r['rmia_auc_ci'][0]:.3f}, {r['rmia_auc_ci'][1]:.3f}]"
            tpr_ci = f" [{100 * r['rmia_tpr_ci'][0]:.1f}, {100 * r['rmia_tpr_ci'][1]:.1f}]"
            lines.append(
                f"| {ARM_LABELS.get(r['arm'], r['arm'])} | {r['density']:g} | {_fmt(r['accuracy'], 100, 2)} | {_fmt(r['rmia_auc'])}{auc_ci} | "
                f"{_fmt(r['rmia_tpr'], 100, 1)}{tpr_ci} | {_fmt(r['lira_auc'])} | {_fmt(r['loss_auc'])} | {_fmt(r['mentr_auc'])} | "
                f"{_gate_cell(r)} | {_fmt(r['seconds'], 1, 0)} | {_fmt(r['share'], 100, 0)} |"
            )
        lines.append("")
    for note in results.get("skipped", []):
        lines += [f"*{note}*", ""]
    for claim in results.get("claims", []):
        verdict = {True: "**holds**", False: "**does not hold**", None: "**undecided** (needs ≥ 2 seeds)"}[claim["holds"]]
        lines += [f"Claim for {ARM_LABELS[claim['arm']]} on {claim['task']} at d = {claim['density']:g}: {verdict}", ""]
        for name, c in claim["conditions"].items():
            mark = {True: "yes", False: "NO", None: "n/a"}[c["holds"]]
            stat = "" if c.get("mean") is None else f": {c['mean']:+.4f}" + (f" ± {c['se']:.4f}" if c.get("se") is not None else "")
            if name == "no_attack_worse_by_more_than_one_se":
                parts = [f"{k} {v['mean']:+.4f}±{v['se']:.4f}" if v["mean"] is not None and v["se"] is not None else f"{k} n/a" for k, v in c["per_attack"].items()]
                stat = ": " + ", ".join(parts)
            lines.append(f"- {mark} — {c['rule']}{stat}")
        lines.append("")
    for arm, ratio in (results.get("cost_ratios") or {}).items():
        se = f" ± {ratio['se']:.2f}" if ratio.get("se") is not None else ""
        verdict = "within" if ratio["holds"] else "over"
        phases = ratio.get("phases") or {}
        where = ", ".join(f"{PHASE_LABELS[k]} {v:.2f}×" for k, v in phases.items())
        attempts = f", {ratio['attempts']:.1f} attempts" if ratio.get("attempts") is not None else ""
        detail = f"; per phase, in plain DST's wall times: {where}{attempts}" if where else ""
        lines += [f"Cost: {ARM_LABELS.get(arm, arm)} took {ratio['mean']:.2f}×{se} plain DST's wall time ({verdict} the {ratio['limit']:g}× limit; n = {ratio['n']}){detail}", ""]
    verdict_claim = results.get("verdict_claim")
    if verdict_claim and verdict_claim.get("conditions"):
        verdict = {True: "**holds**", False: "**does not hold**", None: "**undecided**"}[verdict_claim["holds"]]
        lines += [f"Verdict claim for {ARM_LABELS[verdict_claim['arm']]} at d = {verdict_claim['density']:g} (seeds {', '.join(map(str, verdict_claim['seeds']))}): {verdict}", ""]
        for c in verdict_claim["conditions"].values():
            mark = {True: "yes", False: "NO", None: "n/a"}[c["holds"]]
            detail = {k: v for k, v in c.items() if k not in ("rule", "holds")}
            lines.append(f"- {mark} — {c['rule']}: " + ", ".join(f"{k} {_short(v)}" for k, v in detail.items()))
        lines.append("")
    if results.get("prediction"):
        from safecompress.bench.prediction import render_prediction

        lines += ["How well in-loop evidence predicts the gate, over every judged checkpoint of the SafeCompress arms (requirements run at each):", "", *render_prediction(results["prediction"]), ""]
    claim = (results.get("frontier") or {}).get("claim")
    if claim and claim.get("conditions"):
        verdict = "**holds**" if claim["holds"] else "**does not hold**"
        lines += [f"Frontier claim for {ARM_LABELS[claim['arm']]} at d = {claim['density']:g} (seeds {', '.join(map(str, claim['seeds']))}): {verdict}", ""]
        for c in claim["conditions"].values():
            mark = "yes" if c["holds"] else "NO"
            detail = {k: v for k, v in c.items() if k not in ("rule", "holds")}
            lines.append(f"- {mark} — {c['rule']}: " + ", ".join(f"{k} {_short(v)}" for k, v in detail.items()))
        lines.append("")
    return "\n".join(lines)


def _gate_cell(row: dict[str, Any]) -> str:
    gate = row.get("gate") or {}
    return f"{gate['green']}/{gate['n']}" if gate.get("n") else "–"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {_short(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return "–" if value is None else str(value)
