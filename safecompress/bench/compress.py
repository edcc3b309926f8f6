"""``safecompress bench compress``: does test-driven compression beat plain sparse training on privacy?

The protocol of METHOD.md §8. For every task, seed and density the same dense parent (trained on the
members by the task's recipe) is compressed by every arm with the same epoch budget, starting from
the same magnitude-pruned masks, on the same data split:

``dense``            the parent itself (density 1);
``one-shot``         magnitude prune of the parent to d, then fine-tune with the masks fixed;
``plain-dst``        dynamic sparse training with the same schedule (random regrowth, SET) and no tests;
``accuracy-select``  ablation: SafeCompress's candidates and probes, the winner chosen by in-loop
                     accuracy alone (λ = 0 and safety failures ignored), no remedies;
``sc-select``        SafeCompress selection (fewest red tests, then accuracy − λ·risk), no remedies;
``sc-remedies``      SafeCompress with selection and steering (red tests switch their remedies on);
``plain-dst@d/2``    ablation: plain DST at the next density down (added when not already in the grid).

Every arm runs through :class:`~safecompress.driver.loop.CompressionLoop`: plain DST is the loop
with one random-growth candidate, no probe and no tests, so the arms differ only in how the
topology is chosen and in the remedies. SafeCompress arms use the project's own ``safety_tests/``
and ``[tool.safecompress.compress]``/``thresholds`` settings.

The gate is one function for every arm: RMIA (offline, ``a`` tuned on the references) and LiRA with
``refs`` reference models trained by the target's recipe (cached on disk, so all arms of a seed share
them), plus the loss and modified-entropy attacks, on all members vs all non-members; test accuracy
on the held-out ``test`` split. The loop never sees the gate's attack: in-loop RMIA uses a single
reference and a smaller audit set.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from safecompress.hookspecs import hookimpl

ARMS = ("dense", "one-shot", "plain-dst", "accuracy-select", "sc-select", "sc-remedies")
SAFECOMPRESS_ARMS = ("sc-select", "sc-remedies")
NEXT_DOWN = "plain-dst@next-down"
GATE_ATTACKS = ("rmia", "lira", "loss", "mentr")
CLAIM_TASK = "fashion-mnist"
CLAIM_DENSITY = 0.1
CLAIM_AUC_GAIN = 0.03
CLAIM_ACCURACY_POINTS = 1.0

Log = Callable[[str], None]


# --- the plan -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskSpec:
    """One dataset, its model and its training recipe (the recipe of the parent, every arm and every reference)."""

    name: str
    data: str
    data_options: dict[str, Any]
    recipe: dict[str, Any]
    model: str  # "small_cnn" or "tiny_bert"
    model_options: dict[str, Any] = field(default_factory=dict)
    densities: tuple[float, ...] = (0.1, 0.05)
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ARMS
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": self.data,
            "data_options": self.data_options,
            "recipe": self.recipe,
            "model": self.model,
            "model_options": self.model_options,
            "densities": list(self.densities),
            "seeds": list(self.seeds),
            "arms": list(self.arms),
            "note": self.note,
        }


@dataclass(frozen=True)
class BenchPlan:
    tasks: tuple[TaskSpec, ...]
    refs: int = 4
    quick: bool = False
    skipped: tuple[str, ...] = ()


FASHION_DATA = {"members": 1000, "non_members": 1000, "population": 2000, "test": 2000}
TEXT_DATA = {"members": 1000, "non_members": 1000, "population": 2000, "test": 1000, "vocab_size": 4000, "max_length": 32}
WORDNET_ROOT = Path("/usr/share/wordnet")


def make_plan(quick: bool = False, seeds: Optional[Sequence[int]] = None, text: Optional[bool] = None, wordnet_root: Path = WORDNET_ROOT) -> BenchPlan:
    """The benchmark's grid. ``--quick``: Fashion-MNIST only, one seed, d = 0.1, 30 epochs.

    Full: Fashion-MNIST at d ∈ {0.1, 0.05} over ``seeds`` (default 3) with 60 epochs (the project's
    small-member regime, where leakage is visible), plus the text task — a 2-layer BERT (h = 64) on
    WordNet glosses, one seed, d = 0.1, no accuracy-only ablation — to keep the whole grid inside an
    hour on two CPU cores.
    """
    chosen = tuple(seeds) if seeds else ((0,) if quick else (0, 1, 2))
    fashion = TaskSpec(
        name="fashion-mnist",
        data="fashion-mnist-embedded",
        data_options=dict(FASHION_DATA),
        recipe={"epochs": 30 if quick else 60, "batch_size": 128, "lr": 1e-3, "optimizer": "adam"},
        model="small_cnn",
        densities=(0.1,) if quick else (0.1, 0.05),
        seeds=chosen,
    )
    tasks = [fashion]
    skipped: list[str] = []
    want_text = (not quick) if text is None else text
    if want_text:
        if (Path(wordnet_root) / "data.noun").is_file():
            tasks.append(
                TaskSpec(
                    name="wordnet",
                    data="wordnet",
                    data_options=dict(TEXT_DATA),
                    recipe={"epochs": 30, "batch_size": 64, "lr": 1e-3, "optimizer": "adam"},
                    model="tiny_bert",
                    model_options={"hidden_size": 64, "layers": 2},
                    densities=(0.1,),
                    seeds=chosen[:1],
                    arms=("dense", "one-shot", "plain-dst", "sc-select", "sc-remedies"),
                    note="the first seed of each run only, d = 0.1 (time budget); not part of the claim",
                )
            )
        else:
            skipped.append(f"text task skipped: {Path(wordnet_root) / 'data.noun'} is missing (apt-get install wordnet-base)")
    return BenchPlan(tuple(tasks), refs=4, quick=quick, skipped=tuple(skipped))


def next_density_down(density: float, densities: Sequence[float]) -> float:
    """The next density of the grid below ``density``, else half of it."""
    lower = sorted((d for d in densities if d < density), reverse=True)
    return lower[0] if lower else round(density / 2, 6)


# --- model factories ------------------------------------------------------------------------------
def build_model(task: TaskSpec, data: Any) -> nn.Module:
    """A fresh model for ``task``; the text model is re-initialised exactly as its reference models are."""
    if task.model == "small_cnn":
        from safecompress.models import small_cnn

        return small_cnn(data.num_classes, **task.model_options)
    if task.model == "tiny_bert":
        from safecompress.attacks.reference import Reinitialised
        from safecompress.models import tiny_bert

        max_length = int(data.extra.get("max_length", 32))
        template = tiny_bert(data.num_classes, vocab_size=int(data.extra["vocab_size"]), max_length=max_length, **task.model_options)
        # References are Reinitialised copies of the target (PyTorch default init); the parent gets
        # the same initialisation so that "same recipe" holds for the gate's reference models.
        return Reinitialised(template)()
    raise ValueError(f"unknown model {task.model!r}")


# --- the loop variants ----------------------------------------------------------------------------
def no_tests(model: Any, label: str) -> list[Any]:
    """The ``evaluate`` of the untested arms (plain DST, one-shot): nothing judges the model."""
    return []


class AccuracyOnlySelection:
    """Selection hook of the λ = 0 ablation: the candidate with the best in-loop accuracy, ties to the first."""

    @hookimpl(tryfirst=True)
    def safecompress_select_candidate(self, candidates: Sequence[Any], config: Any) -> Optional[Any]:
        if not candidates:
            return None
        return max(candidates, key=lambda c: c.accuracy if math.isfinite(c.accuracy) else -math.inf)


def arm_settings(arm: str, density: float, seed: int, base: Any, out: Path) -> Any:
    """CompressSettings of one arm: the project's compress settings with what the arm changes."""
    if arm in ("plain-dst", NEXT_DOWN):
        return replace(base, density=density, seed=seed, out=out, candidates=1, probe_steps=0, final_checks=0, remedies=False, strategies=("random:0",), vary_prune=False, resume=False)
    if arm == "one-shot":
        return replace(base, density=density, seed=seed, out=out, updates=0, candidates=1, probe_steps=0, final_checks=0, remedies=False, strategies=("random:0",), resume=False)
    if arm == "accuracy-select":
        return replace(base, density=density, seed=seed, out=out, lambda_=0.0, remedies=False, resume=False)
    if arm == "sc-select":
        return replace(base, density=density, seed=seed, out=out, remedies=False, resume=False)
    if arm == "sc-remedies":
        return replace(base, density=density, seed=seed, out=out, remedies=True, resume=False)
    raise ValueError(f"unknown arm {arm!r}")


# --- measurements ---------------------------------------------------------------------------------
def _interval(value: Any) -> dict[str, float]:
    return {"value": float(value.value), "low": float(value.low), "high": float(value.high)}


@dataclass
class GateReferences:
    """The gate's reference models' outputs on every row, computed once per (task, seed) and shared by all arms."""

    ref_logits: Any
    ref_in: Any
    seconds: float
    loaded_from_cache: list[bool]


def gate_references(template: nn.Module, data: Any, recipe: Any, seed: int, device: Any, refs: int) -> GateReferences:
    """Train (or load from the on-disk cache) ``refs`` references on halves of the population, exactly as
    :func:`~safecompress.attacks.run_attacks` does offline, and keep their outputs on all rows."""
    import numpy as np

    from safecompress.attacks.reference import as_reference_recipe, outputs_on, reference_in_masks, train_reference_models

    started = time.perf_counter()
    parts = [data.members, data.non_members, data.population]
    sizes = [len(p) for p in parts]
    trained = train_reference_models(as_reference_recipe(recipe, template), data.population, refs, seed=seed, device=device)
    ref_logits = outputs_on(trained.models, parts, torch.device(device) if isinstance(device, str) else device, 512)
    ref_in = reference_in_masks(trained, sum(sizes), np.arange(sizes[0] + sizes[1], sum(sizes)))
    return GateReferences(ref_logits, ref_in, round(time.perf_counter() - started, 3), list(trained.loaded_from_cache))


def gate_metrics(model: nn.Module, data: Any, references: GateReferences, seed: int, device: Any) -> dict[str, Any]:
    """The gate, identical for every arm: test accuracy and the attack suite against the shared references
    (equivalent to ``run_attacks(["rmia", "lira", "loss", "mentr"], model, data, refs=k, recipe=recipe, seed=seed)``)."""
    import dataclasses

    from safecompress.attacks import lira_attack, loss_attack, make_attack_inputs, modified_entropy_attack, rmia_attack
    from safecompress.driver.gate import held_out_accuracy

    started = time.perf_counter()
    inputs = make_attack_inputs(model, data, device=device, seed=seed)
    inputs = dataclasses.replace(inputs, ref_logits=references.ref_logits, ref_in=references.ref_in)
    results = {
        "rmia": rmia_attack(inputs, seed=seed),
        "lira": lira_attack(inputs),
        "loss": loss_attack(inputs),
        "mentr": modified_entropy_attack(inputs),
    }
    attacks = {}
    for name, result in results.items():
        rate = result.tpr_at(0.01)
        attacks[name] = {"auc": _interval(result.auc), "tpr_at_1pct_fpr": {**_interval(rate.tpr), "reliable": bool(rate.reliable)}}
        if name == "rmia":
            attacks[name]["a"] = result.extra.get("a")
    accuracy = held_out_accuracy(model, data, device)
    return {"test_accuracy": {k: float(accuracy[k]) for k in ("value", "low", "high")}, "attacks": attacks, "gate_seconds": round(time.perf_counter() - started, 3)}


def summarize_decisions(decisions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How much the in-loop tests could and did steer: candidate spread, disagreements with accuracy-only."""
    spreads, acc_spreads, changed, red, winner_minus_acc_best, trace = [], [], [], [], [], []
    for update in decisions:
        cands = update.get("candidates", [])
        aucs = [c["metrics"].get("rmia1_auc") for c in cands if c.get("metrics", {}).get("rmia1_auc") is not None]
        accs = [c.get("accuracy") for c in cands if c.get("accuracy") is not None]
        if len(aucs) >= 2:
            spreads.append(max(aucs) - min(aucs))
        if len(accs) >= 2:
            acc_spreads.append(max(accs) - min(accs))
        if cands:
            best_acc = max(cands, key=lambda c: c.get("accuracy", -1.0))
            winner = next((c for c in cands if c["name"] == update["winner"]), None)
            changed.append(winner is not None and winner["name"] != best_acc["name"])
            if winner is not None:
                trace.append({"rmia1_auc": winner["metrics"].get("rmia1_auc"), "loss_auc": winner["metrics"].get("loss_auc"), "accuracy": winner.get("accuracy")})
                red.append(any(o in ("failed", "error") and "rmia" in nodeid for nodeid, o in winner.get("outcomes", {}).items()))
                w, b = winner["metrics"].get("rmia1_auc"), best_acc["metrics"].get("rmia1_auc")
                if w is not None and b is not None:
                    winner_minus_acc_best.append(w - b)
    mean = lambda xs: float(statistics.fmean(xs)) if xs else None  # noqa: E731
    weights = [u.get("remedy_weights", {}) for u in decisions]
    return {
        "updates": len(decisions),
        "winners": [u.get("winner") for u in decisions],
        "mean_candidate_rmia1_auc_spread": mean(spreads),
        "mean_candidate_accuracy_spread": mean(acc_spreads),
        "share_winner_not_most_accurate": mean([float(c) for c in changed]),
        "mean_winner_minus_most_accurate_rmia1_auc": mean(winner_minus_acc_best),
        "share_updates_in_loop_rmia_red": mean([float(r) for r in red]),
        "remedy_weights": weights,
        "winner_in_loop_metrics": trace,
    }


# --- one task, one seed ---------------------------------------------------------------------------
def _ini_for(task: TaskSpec, project_ini: dict[str, Any], refs: int) -> dict[str, Any]:
    ini = copy.deepcopy(project_ini)
    ini["data"] = task.data
    ini["data-options"] = dict(task.data_options)
    ini.pop("data_options", None)
    ini["recipe"] = dict(task.recipe)
    ini["gate-refs"] = refs
    return ini


def start_session(task: TaskSpec, seed: int, device: str, rootdir: Path, project_ini: dict[str, Any], refs: int) -> Any:
    """A safety session on the project's ``safety_tests/`` with the task's data, recipe and seed."""
    from safecompress.config import config_from_args
    from safecompress.plugins import get_plugin_manager
    from safecompress.runner.session import SafetySession

    option = argparse.Namespace(seed=seed, device=device, rootdir=rootdir, verbose=0, quiet=1)
    config = config_from_args(option, get_plugin_manager(), "bench", ini=_ini_for(task, project_ini, refs))
    session = SafetySession(config)
    session.start()
    session.collect()
    if not session.items:
        raise RuntimeError(f"no safety tests collected under {rootdir}: the SafeCompress arms need the project's safety_tests/")
    return session


def run_seed(
    task: TaskSpec, seed: int, *, device: str, rootdir: Path, project_ini: dict[str, Any], refs: int, extra_density: Optional[float], log: Log, on_record: Callable[[dict[str, Any]], None]
) -> None:
    """Every arm of ``task`` at every density for one seed; each finished arm goes to ``on_record``."""
    from safecompress.driver.loop import CompressionLoop
    from safecompress.driver.settings import CompressSettings
    from safecompress.plugins import collect_registry
    from safecompress.training import fit, seeded

    session = start_session(task, seed, device, rootdir, project_ini, refs)
    try:
        data = session.fixture_value("data")
        recipe = session.train_recipe()
        remedies = collect_registry(session.pm, "safecompress_register_remedies")
        base = CompressSettings.from_sources({}, dict(project_ini.get("compress", {})))
        base = replace(base, device=device, epochs=None)

        started = time.perf_counter()
        with seeded(seed, torch.device("cpu")):
            parent = build_model(task, data)
        parent = fit(parent, data.members, recipe, seed=seed, device=session.device)
        dense_seconds = time.perf_counter() - started
        session.dense_model = parent.eval()
        # The in-loop tests' session-wide fixtures (audit set, the one in-loop reference model) are
        # built here, once, outside every arm's clock — as `safecompress compress` does.
        setup = time.perf_counter()
        session.set_model(parent, label="dense parent")
        session.run(select=lambda item: item.cost == "cheap")
        setup_seconds = time.perf_counter() - setup
        references = gate_references(parent, data, recipe, seed, session.device, refs)
        gate = gate_metrics(parent, data, references, seed, session.device)
        on_record(
            _record(
                task,
                seed,
                1.0,
                "dense",
                gate,
                dense_seconds,
                None,
                {
                    "in_loop_setup_seconds": round(setup_seconds, 3),
                    "gate_references_seconds": references.seconds,
                    "gate_references_cached": references.loaded_from_cache,
                },
            )
        )
        log(f"{task.name} seed {seed}: dense  acc {gate['test_accuracy']['value']:.4f}  RMIA {gate['attacks']['rmia']['auc']['value']:.4f}  ({dense_seconds:.0f}s, gate {gate['gate_seconds']:.0f}s)")

        grid = [(d, arm) for d in task.densities for arm in task.arms if arm != "dense"]
        if extra_density is not None:
            grid.append((extra_density, NEXT_DOWN))
        for density, arm in grid:
            with tempfile.TemporaryDirectory(prefix="safecompress-bench-") as tmp:
                settings = arm_settings(arm, density, seed, base, Path(tmp))
                evaluate = no_tests if arm in ("plain-dst", "one-shot", NEXT_DOWN) else None
                plugin = AccuracyOnlySelection() if arm == "accuracy-select" else None
                if plugin is not None:
                    session.pm.register(plugin, name="bench:accuracy-only-selection")
                try:
                    t0 = time.perf_counter()
                    result = CompressionLoop(session, parent, data, recipe, settings, remedies, evaluate=evaluate).run()
                    seconds = time.perf_counter() - t0
                finally:
                    if plugin is not None:
                        session.pm.unregister(plugin)
                gate = gate_metrics(result.model, data, references, seed, session.device)
                record = _record(task, seed, density, arm, gate, seconds, result.timers, summarize_decisions(result.decisions) if arm not in ("plain-dst", "one-shot", NEXT_DOWN) else None)
                record["achieved_density"] = round(float(result.engine.density()), 6)
                record["settings"] = {k: v for k, v in settings.to_dict().items() if k not in ("out", "device", "resume")}
                record["remedy_weights"] = result.remedy_weights
                record["shipped_step"] = result.shipped_step
                record["final_checks"] = [
                    {"step": c["step"], "accuracy": c["candidates"][0]["accuracy"], "rmia1_auc": c["candidates"][0]["metrics"].get("rmia1_auc"), "remedy_weights": c["remedy_weights"]}
                    for c in result.final_checks
                ]
                on_record(record)
                log(
                    f"{task.name} seed {seed}: d={density:g} {arm:<19} acc {gate['test_accuracy']['value']:.4f}  RMIA {gate['attacks']['rmia']['auc']['value']:.4f}  "
                    f"loss {gate['attacks']['loss']['auc']['value']:.4f}  ({seconds:.0f}s, tests {100 * result.timers.overhead:.0f} %)"
                )
    finally:
        session.close()


def _record(task: TaskSpec, seed: int, density: float, arm: str, gate: dict[str, Any], seconds: float, timers: Any, extra: Optional[dict[str, Any]]) -> dict[str, Any]:
    return {
        "task": task.name,
        "seed": seed,
        "density": density,
        "arm": arm,
        **gate,
        "seconds": round(seconds, 3),
        "timers": timers.to_dict() if timers is not None else None,
        "safety_test_share": round(timers.overhead, 4) if timers is not None else 0.0,
        "diagnostics": extra,
    }


# --- aggregation ----------------------------------------------------------------------------------
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
        rows.append(row)
    return rows


def paired(records: Sequence[dict[str, Any]], task: str, density_a: float, arm_a: str, density_b: float, arm_b: str, metric: str) -> dict[str, Any]:
    """Mean ± SE over seeds of metric(arm_a) − metric(arm_b), paired by seed."""

    def by_seed(density: float, arm: str) -> dict[int, float]:
        return {r["seed"]: metric_of(r, metric) for r in records if r["task"] == task and r["arm"] == arm and math.isclose(r["density"], density)}

    a, b = by_seed(density_a, arm_a), by_seed(density_b, arm_b)
    seeds = sorted(set(a) & set(b))
    return {**mean_se([a[s] - b[s] for s in seeds]), "seeds": seeds}


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


# --- the whole benchmark --------------------------------------------------------------------------
def run_compress_benchmark(
    plan: BenchPlan,
    *,
    device: str = "cpu",
    rootdir: Optional[Path] = None,
    log: Log = print,
    checkpoint: Optional[Callable[[dict[str, Any]], None]] = None,
) -> dict[str, Any]:
    """Run ``plan``; returns the raw per-run records, the summary rows and the claim checks."""
    from safecompress.config import find_rootdir

    root, project_ini = find_rootdir(rootdir or Path.cwd())
    if not (root / "safety_tests").is_dir():
        raise RuntimeError(f"no safety_tests/ under {root}: run the benchmark from a clone of the safecompress repository")
    started = time.perf_counter()
    revision = git_revision(root)
    records: list[dict[str, Any]] = []
    results: dict[str, Any] = {}

    def snapshot() -> dict[str, Any]:
        results.update(_assemble(plan, records, project_ini, device, time.perf_counter() - started, revision))
        return results

    def on_record(record: dict[str, Any]) -> None:
        records.append(record)
        if checkpoint is not None:
            checkpoint(snapshot())

    for note in plan.skipped:
        log(note)
    for task in plan.tasks:
        extra = None
        if CLAIM_DENSITY in task.densities and next_density_down(CLAIM_DENSITY, task.densities) not in task.densities and "plain-dst" in task.arms and task.name == CLAIM_TASK:
            extra = next_density_down(CLAIM_DENSITY, task.densities)
        for seed in task.seeds:
            run_seed(task, seed, device=device, rootdir=root, project_ini=project_ini, refs=plan.refs, extra_density=extra, log=log, on_record=on_record)
    return snapshot()


def git_revision(root: Path) -> Optional[str]:
    """The checked-out commit (``+dirty`` with uncommitted changes), or None outside a git checkout."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _assemble(plan: BenchPlan, records: list[dict[str, Any]], project_ini: dict[str, Any], device: str, seconds: float, revision: Optional[str] = None) -> dict[str, Any]:
    from safecompress.driver.gate import versions

    claim_task = next((t for t in plan.tasks if t.name == CLAIM_TASK), None)
    next_down = next_density_down(CLAIM_DENSITY, claim_task.densities) if claim_task else CLAIM_DENSITY / 2
    claims = [check_claim(records, arm, next_down=next_down) for arm in SAFECOMPRESS_ARMS] if claim_task else []
    return {
        "benchmark": "compress",
        "quick": plan.quick,
        "tasks": [t.describe() for t in plan.tasks],
        "skipped": list(plan.skipped),
        "refs": plan.refs,
        "gate_attacks": list(GATE_ATTACKS),
        "project_settings": {
            "compress": project_ini.get("compress", {}),
            "thresholds": project_ini.get("thresholds", {}),
            "loop-members": project_ini.get("loop-members"),
            "loop-population": project_ini.get("loop-population"),
        },
        "environment": {
            **versions(),
            "device": device,
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "git": revision,
        },
        "total_seconds": round(seconds, 1),
        "records": records,
        "summary": summarize(records),
        "claims": claims,
    }


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs over disjoint seeds — e.g. ``--seeds 9,10`` and ``--seeds 11,`` side by
    side on two cores — with the summary and the claims recomputed from the pooled records. Runs of
    different settings or overlapping seeds are refused; the wall time is the longest run's."""
    from safecompress.errors import UsageError

    if not parts:
        raise UsageError("nothing to merge")
    if any(part.get("benchmark") != "compress" or "records" not in part for part in parts):
        raise UsageError("only `safecompress bench compress --json` results can be merged")
    first = parts[0]
    for key in ("quick", "refs", "project_settings"):
        if any(part.get(key) != first.get(key) for part in parts[1:]):
            raise UsageError(f"cannot merge runs with different {key.replace('_', ' ')}")
    runs: set[tuple[str, int, float, str]] = set()
    for record in (r for part in parts for r in part["records"]):
        run = (record["task"], record["seed"], record["density"], record["arm"])
        if run in runs:
            raise UsageError(f"{record['task']} seed {record['seed']} appears in more than one file: merge runs over disjoint seeds")
        runs.add(run)
    tasks: dict[str, TaskSpec] = {}
    for described in (t for part in parts for t in part["tasks"]):
        task = TaskSpec(**{**described, "densities": tuple(described["densities"]), "seeds": tuple(described["seeds"]), "arms": tuple(described["arms"])})
        known = tasks.get(task.name)
        if known is not None and replace(known, seeds=()) != replace(task, seeds=()):
            raise UsageError(f"cannot merge runs whose {task.name} tasks differ (data, recipe, model, densities or arms)")
        tasks[task.name] = replace(task, seeds=tuple(sorted({*(known.seeds if known else ()), *task.seeds})))
    plan = BenchPlan(tuple(tasks.values()), refs=first["refs"], quick=first["quick"], skipped=tuple(dict.fromkeys(s for part in parts for s in part.get("skipped", []))))
    records = [r for part in parts for r in part["records"]]
    merged = _assemble(plan, records, first["project_settings"], first["environment"]["device"], max(part["total_seconds"] for part in parts), first["environment"].get("git"))
    merged["environment"] = first["environment"]
    merged["merged_from"] = [{"command": part.get("command"), "total_seconds": part["total_seconds"], "git": part["environment"].get("git")} for part in parts]
    return merged


# --- rendering ------------------------------------------------------------------------------------
ARM_LABELS = {
    "dense": "dense parent",
    "one-shot": "one-shot magnitude + fine-tune",
    "plain-dst": "plain DST (SET, no tests)",
    "accuracy-select": "ablation: select by accuracy only (λ=0)",
    "sc-select": "SafeCompress, selection only",
    "sc-remedies": "SafeCompress, selection + remedies",
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
        "“tests %” is the share of the compression loop's time spent probing and testing candidates.",
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
            "| arm | density | test acc % | RMIA AUC | RMIA TPR@1%FPR % | LiRA AUC | loss AUC | mentr AUC | wall s | tests % |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            auc_ci = f" [{r['rmia_auc_ci'][0]:.3f}, {r['rmia_auc_ci'][1]:.3f}]"
            tpr_ci = f" [{100 * r['rmia_tpr_ci'][0]:.1f}, {100 * r['rmia_tpr_ci'][1]:.1f}]"
            lines.append(
                f"| {ARM_LABELS.get(r['arm'], r['arm'])} | {r['density']:g} | {_fmt(r['accuracy'], 100, 2)} | {_fmt(r['rmia_auc'])}{auc_ci} | "
                f"{_fmt(r['rmia_tpr'], 100, 1)}{tpr_ci} | {_fmt(r['lira_auc'])} | {_fmt(r['loss_auc'])} | {_fmt(r['mentr_auc'])} | "
                f"{_fmt(r['seconds'], 1, 0)} | {_fmt(r['share'], 100, 0)} |"
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
    return "\n".join(lines)


def parse_seeds(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``--seeds 3`` means seeds 0, 1, 2; ``--seeds 4,7`` means exactly those."""
    if text is None:
        return None
    text = str(text).strip()
    if "," in text:
        return tuple(int(s) for s in text.split(",") if s.strip())
    count = int(text)
    if count < 1:
        raise ValueError(f"--seeds needs a positive count or a comma-separated list, got {text!r}")
    return tuple(range(count))
