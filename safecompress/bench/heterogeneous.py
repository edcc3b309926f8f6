"""``safecompress bench heterogeneous``: adversarial regularisation against a black-box, a white-box or
both attackers (TSE 2024's BMIA-, WMIA- and MMIA-SafeCompress remedies), gated by RMIA/LiRA and by the
learned attacks they defend against.

Every arm runs on the benchmark task of ``bench compress`` (Fashion-MNIST, 1,000 members, the same
parent, masks, recipe and gate references per seed) with plain DST's topology (one random-growth
candidate, no tests), so the arms differ only in the remedy, always on at one weight:

``plain-dst``   no remedy;
``bmia``        adversarial regularisation against the black-box attacker (outputs and label);
``wmia``        against the white-box attacker (adds the per-sample loss and last-layer gradient);
``mmia``        against both at once (the mean of the two classifier terms).

The gate is ``bench compress``'s (test accuracy, RMIA and LiRA with the shared references, loss and
modified entropy) plus the learned Nasr attacks, black-box and white-box, trained on calibration
members against population rows and scored on the evaluation rows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

ARMS: dict[str, Optional[str]] = {"plain-dst": None, "bmia": "black", "wmia": "white", "mmia": "both"}
DESCRIPTIONS = {
    "dense": "dense parent",
    "plain-dst": "plain DST, no remedy",
    "bmia": "adversarial regularisation, black-box attacker (BMIA)",
    "wmia": "adversarial regularisation, white-box attacker (WMIA)",
    "mmia": "adversarial regularisation, both attackers (MMIA)",
}
METRICS = (
    ("test acc %", "test_accuracy", 100.0),
    ("RMIA AUC", "rmia", 1.0),
    ("RMIA TPR@1%FPR %", "rmia_tpr", 100.0),
    ("LiRA AUC", "lira", 1.0),
    ("Nasr black-box AUC", "nasr", 1.0),
    ("Nasr white-box AUC", "nasr_whitebox", 1.0),
)
Log = Callable[[str], None]


def learned_attacks(model: torch.nn.Module, data: Any, seed: int, device: Any) -> dict[str, Any]:
    """The Nasr attacks the remedies defend against, on the same rows and calibration split as the gate."""
    from safecompress.attacks import make_attack_inputs, nasr_attack, nasr_whitebox_attack

    inputs = make_attack_inputs(model, data, device=device, seed=seed, gradients=True)
    out = {}
    for name, attack in (("nasr", nasr_attack), ("nasr_whitebox", nasr_whitebox_attack)):
        result = attack(inputs, device=device, seed=seed)
        out[name] = {"auc": {"value": float(result.auc.value), "low": float(result.auc.low), "high": float(result.auc.high)}}
    return out


def run_heterogeneous_benchmark(
    seeds: Sequence[int],
    *,
    weight: float = 0.8,
    quick: bool = False,
    device: str = "cpu",
    rootdir: Optional[Path] = None,
    log: Log = print,
    checkpoint: Optional[Callable[[dict[str, Any]], None]] = None,
    task: Any = None,
    refs: int = 4,
) -> dict[str, Any]:
    """Every arm on every seed; the results (rewritten through ``checkpoint`` after each arm) and a
    summary. ``task`` replaces the benchmark task (a smaller one in tests)."""
    from safecompress.bench.compress import arm_settings, build_model, git_revision, no_tests, start_session
    from safecompress.bench.gate import gate_metrics, gate_references
    from safecompress.bench.plan import make_plan
    from safecompress.config import find_rootdir
    from safecompress.driver.job import run_attempts
    from safecompress.driver.settings import CompressSettings
    from safecompress.plugins import collect_registry
    from safecompress.training import fit, seeded

    root, project_ini = find_rootdir(rootdir or Path.cwd())
    task = replace(task, seeds=tuple(seeds)) if task is not None else make_plan(quick=quick, seeds=seeds, claim_only=True).tasks[0]
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "heterogeneous", "weight": weight, "refs": refs, "quick": quick, "task": task.describe()}
    results.update(git=git_revision(root), torch_threads=torch.get_num_threads())

    def record(entry: dict[str, Any]) -> None:
        records.append(entry)
        results.update(records=records, summary=summarize(records), total_seconds=round(time.perf_counter() - started, 1))
        if checkpoint is not None:
            checkpoint(results)

    for seed in task.seeds:
        session = start_session(task, seed, device, root, project_ini, refs)
        try:
            data = session.fixture_value("data")
            recipe = session.train_recipe()
            remedies = collect_registry(session.pm, "safecompress_register_remedies")
            base = replace(CompressSettings.from_sources({}, dict(project_ini.get("compress", {}))), device=device, epochs=None)
            t0 = time.perf_counter()
            with seeded(seed, torch.device("cpu")):
                parent = build_model(task, data)
            parent = fit(parent, data.members, recipe, seed=seed, device=session.device)
            session.dense_model = parent.eval()
            references = gate_references(parent, data, recipe, seed, session.device, refs)
            dense_gate = gate_metrics(parent, data, references, seed, session.device)
            record({"seed": seed, "arm": "dense", "seconds": round(time.perf_counter() - t0, 3), **dense_gate, "learned": learned_attacks(parent, data, seed, session.device)})
            for arm, kind in ARMS.items():
                with tempfile.TemporaryDirectory(prefix="safecompress-bench-") as tmp:
                    settings = arm_settings("adv-always", 0.1, seed, base, Path(tmp))
                    fixed = None if kind is None else {"adversarial_regularization": weight}
                    options = None if kind is None else {"adversarial_regularization": {"attacker": kind}}
                    t0 = time.perf_counter()
                    result, _ = run_attempts(
                        session, parent, settings, lambda k, p: None, data=data, recipe=recipe, remedy_factories=remedies, evaluate=no_tests, fixed_remedies=fixed, fixed_options=options
                    )
                    seconds = time.perf_counter() - t0
                gate = gate_metrics(result.model, data, references, seed, session.device)
                learned = learned_attacks(result.model, data, seed, session.device)
                record({"seed": seed, "arm": arm, "attacker": kind, "seconds": round(seconds, 3), **gate, "learned": learned})
                log(
                    f"seed {seed}: {arm:<9} acc {gate['test_accuracy']['value']:.4f}  RMIA {gate['attacks']['rmia']['auc']['value']:.4f}  "
                    f"Nasr black {learned['nasr']['auc']['value']:.4f} white {learned['nasr_whitebox']['auc']['value']:.4f}  ({seconds:.0f}s)"
                )
        finally:
            session.close()
    return results


def _values(record: dict[str, Any]) -> dict[str, float]:
    return {
        "test_accuracy": record["test_accuracy"]["value"],
        "rmia": record["attacks"]["rmia"]["auc"]["value"],
        "rmia_tpr": record["attacks"]["rmia"]["tpr_at_1pct_fpr"]["value"],
        "lira": record["attacks"]["lira"]["auc"]["value"],
        "nasr": record["learned"]["nasr"]["auc"]["value"],
        "nasr_whitebox": record["learned"]["nasr_whitebox"]["auc"]["value"],
        "seconds": record["seconds"],
    }


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm: mean and standard error over seeds of every gate number, and the seeds."""
    rows = []
    for arm in ("dense", *ARMS):
        chosen = [_values(r) for r in records if r["arm"] == arm]
        if not chosen:
            continue
        row: dict[str, Any] = {"arm": arm, "seeds": sorted(r["seed"] for r in records if r["arm"] == arm)}
        for key in chosen[0]:
            values = [c[key] for c in chosen]
            row[key] = {"mean": statistics.fmean(values), "se": statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0}
        rows.append(row)
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["| arm | " + " | ".join(name for name, _, _ in METRICS) + " | wall s |", "|---" * (len(METRICS) + 2) + "|"]
    for row in results.get("summary", []):
        cells = [f"{row[key]['mean'] * scale:.3f} ± {row[key]['se'] * scale:.3f}" if scale == 1.0 else f"{row[key]['mean'] * scale:.2f} ± {row[key]['se'] * scale:.2f}" for _, key, scale in METRICS]
        lines.append(f"| {DESCRIPTIONS[row['arm']]} | " + " | ".join(cells) + f" | {row['seconds']['mean']:.0f} |")
    seeds = sorted({r["seed"] for r in results.get("records", [])})
    lines.append("")
    lines.append(f"Seeds {', '.join(map(str, seeds))}; remedy weight λ = {results.get('weight')}; mean ± standard error over seeds.")
    return "\n".join(lines) + "\n"


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool runs over disjoint seeds at the same weight (``--merge``): the summary is recomputed."""
    from safecompress.errors import UsageError

    if not parts or any(p.get("benchmark") != "heterogeneous" for p in parts):
        raise UsageError("--merge: every file must be a `bench heterogeneous` result")
    if len({(p.get("weight"), p.get("refs"), p.get("quick")) for p in parts}) != 1:
        raise UsageError("--merge: the runs differ in weight, references or --quick; only runs of one setting pool")
    seeds = [r["seed"] for p in parts for r in p["records"] if r["arm"] == "dense"]
    if len(seeds) != len(set(seeds)):
        raise UsageError(f"--merge: seeds overlap ({sorted(seeds)})")
    records = [r for p in parts for r in p["records"]]
    merged = {k: v for k, v in parts[0].items() if k not in ("records", "summary", "total_seconds", "command")}
    merged.update(records=records, summary=summarize(records), merged_from=[{"git": p.get("git"), "command": p.get("command"), "total_seconds": p.get("total_seconds")} for p in parts])
    return merged
