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
``sc-final-phase``   SafeCompress with selection and steering, one attempt, shipping only from the
                     final phase (the shipping rule before issue 13), for comparison;
``sc-remedies``      SafeCompress as ``compress`` runs it: selection, steering, the best passing judged
                     checkpoint of the whole run ships, and attempts while none passes;
``sc-budget``        ``sc-remedies`` under ``--budget 1.3``: the plan trims it to 1.3× the work of plain
                     training (:mod:`safecompress.driver.budget`), so it says what that cost limit buys;
``sc-no-selection``  ablation: ``sc-remedies`` with one candidate per update (plain DST's random
                     regrowth, no probe): the tests steer the remedies but choose no mask, so it says
                     whether N candidates earn their price;
``early-stop``       plain DST judged by the performance tests alone (no privacy signal): the judged
                     checkpoint with the best utility ships, the early stopping a user would try;
``adv-always``       plain DST with adversarial regularisation always on at the shipped base λ (no
                     tests, no selection): the defence a user would switch on by hand;
``relaxloss-always`` plain DST trained by RelaxLoss (weight 1, its default α) throughout;
``dp-sgd-eps8``, ``dp-sgd-eps1``  DP-SGD through Opacus at ε = 8 and ε = 1 (δ = 1/n, RDP accountant)
                     on the parent's magnitude masks, fixed, from the parent's initialisation (the
                     weights are trained privately; the masks are cut from the parent): the recipe's
                     optimizer, epochs and expected batch size, per-sample clipping at norm 1;
``plain-dst@d/2``    ablation: plain DST at the next density down (added when not already in the grid);
                     the full plan also runs plain DST at the task's ``sparser`` densities (the "just
                     go sparser" curve).

Every arm runs through :func:`~safecompress.driver.job.run_attempts` (the loop as ``compress`` runs
it, from the same baseline): plain DST is the loop with one random-growth candidate, no probe and no
tests, so the arms differ only in how the topology is chosen, in the remedies and in what ships. SafeCompress arms use the project's own ``safety_tests/``
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
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from safecompress.bench.frontier import CLAIMED_ARM, check_frontier_claim, frontier_points
from safecompress.bench.gate import GATE_ATTACKS, gate_metrics, gate_references, summarize_decisions
from safecompress.bench.plan import ARMS, DP_ARMS, NEXT_DOWN, SAFECOMPRESS_ARMS, SC_BUDGET, BenchPlan, TaskSpec, next_density_down
from safecompress.bench.prediction import prediction_summary
from safecompress.bench.results import CLAIM_DENSITY, CLAIM_TASK, check_claim, check_verdict_claim, cost_ratios, summarize
from safecompress.hookspecs import hookimpl

Log = Callable[[str], None]


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
# Always-on defences: remedy weights for the whole run (adversarial regularisation at the base λ the
# shipped in-loop test starts from; RelaxLoss as its paper trains, the whole loss).
FIXED_REMEDY_ARMS = {"adv-always": {"adversarial_regularization": 0.1}, "relaxloss-always": {"relaxloss": 1.0}}
UNTESTED_ARMS = ("plain-dst", "one-shot", NEXT_DOWN, *FIXED_REMEDY_ARMS, *DP_ARMS)


def performance_only(item: Any) -> bool:
    """The tests that judge ``early-stop``: the suite's performance tests alone (no privacy signal)."""
    from safecompress.driver.selection import PERFORMANCE_MARK

    return item.get_mark(PERFORMANCE_MARK) is not None


def no_tests(model: Any, label: str) -> list[Any]:
    """The ``evaluate`` of the untested arms (plain DST, one-shot): nothing judges the model."""
    return []


class AccuracyOnlySelection:
    """Selection hook of the λ = 0 ablation: the candidate with the best in-loop accuracy, ties to the first."""

    @hookimpl(tryfirst=True)
    def safecompress_select_candidate(self, candidates: Sequence[Any], config: Any) -> Optional[Any]:
        if not candidates:
            return None
        return max(candidates, key=lambda c: c.utility if math.isfinite(c.utility) else -math.inf)


def arm_settings(arm: str, density: float, seed: int, base: Any, out: Path) -> Any:
    """CompressSettings of one arm: the project's compress settings with what the arm changes."""
    run = replace(base, density=density, seed=seed, out=out, resume=False)
    one_mask = dict(candidates=1, probe_steps=0, strategies=("random:0",), vary_prune=False)  # plain DST's topology: no selection
    if arm in ("plain-dst", NEXT_DOWN):
        return replace(run, **one_mask, final_checks=0, remedies=False)
    if arm == "one-shot":
        return replace(run, updates=0, candidates=1, probe_steps=0, final_checks=0, remedies=False, strategies=("random:0",))
    if arm == "accuracy-select":
        return replace(run, lambda_=0.0, remedies=False)
    if arm == "sc-select":
        return replace(run, remedies=False)
    if arm == "sc-final-phase":
        return replace(run, remedies=True, ship_from="final-phase", attempts=1)
    if arm == "sc-remedies":
        return replace(run, remedies=True)
    if arm == "sc-budget":
        return replace(run, remedies=True, budget=SC_BUDGET)
    if arm == "sc-no-selection":
        return replace(run, **one_mask, remedies=True)
    if arm in FIXED_REMEDY_ARMS:
        return replace(run, **one_mask, final_checks=0, remedies=False, attempts=1)
    if arm == "early-stop":
        return replace(run, **one_mask, remedies=False, attempts=1)
    if arm in DP_ARMS:
        return replace(run, **one_mask, updates=0, final_checks=0, remedies=False, attempts=1)
    raise ValueError(f"unknown arm {arm!r}")


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
    task: TaskSpec,
    seed: int,
    *,
    device: str,
    rootdir: Path,
    project_ini: dict[str, Any],
    refs: int,
    extra_density: Optional[float],
    log: Log,
    on_record: Callable[[dict[str, Any]], None],
    gate_checkpoints: bool = False,
) -> None:
    """Every arm of ``task`` at every density for one seed; each finished arm goes to ``on_record``.
    ``gate_checkpoints``: the SafeCompress arms also run the requirements at every judged checkpoint
    (``record["checkpoint_gates"]``, for :mod:`safecompress.bench.prediction`)."""
    from safecompress.bench.prediction import gating_every_checkpoint
    from safecompress.driver.gate import requirement_verdict
    from safecompress.driver.job import run_attempts
    from safecompress.driver.loop import Timers, cheap_tests
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
        baseline = session.run(select=lambda item: item.cost == "cheap")
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
        grid += [(d, "plain-dst") for d in task.sparser if d not in task.densities]
        if extra_density is not None:
            grid.append((extra_density, NEXT_DOWN))
        for density, arm in grid:
            if arm in DP_ARMS:
                record, model = private_arm(task, seed, density, arm, parent, data, recipe, base, references, session.device, log)
                record["verdict"] = requirement_verdict(session, model, arm)
                on_record(record)
                continue
            with tempfile.TemporaryDirectory(prefix="safecompress-bench-") as tmp:
                settings = arm_settings(arm, density, seed, base, Path(tmp))
                evaluate = no_tests if arm in UNTESTED_ARMS else (cheap_tests(session, performance_only) if arm == "early-stop" else None)
                gated: list[dict[str, Any]] = []
                if gate_checkpoints and arm in SAFECOMPRESS_ARMS:
                    evaluate = gating_every_checkpoint(session, evaluate or cheap_tests(session), gated)
                plugin = AccuracyOnlySelection() if arm == "accuracy-select" else None
                if plugin is not None:
                    session.pm.register(plugin, name="bench:accuracy-only-selection")
                try:
                    t0 = time.perf_counter()
                    fixed = FIXED_REMEDY_ARMS.get(arm)
                    result, attempts = run_attempts(
                        session,
                        parent,
                        settings,
                        lambda kind, payload: None,
                        validation=arm != "early-stop",  # its ablation: no privacy signal at all
                        data=data,
                        recipe=recipe,
                        remedy_factories=remedies,
                        evaluate=evaluate,
                        baseline=baseline,
                        fixed_remedies=fixed,
                    )
                    seconds = time.perf_counter() - t0
                finally:
                    if plugin is not None:
                        session.pm.unregister(plugin)
                gate = gate_metrics(result.model, data, references, seed, session.device)
                record = _record(
                    task,
                    seed,
                    density,
                    arm,
                    gate,
                    seconds,
                    Timers(**{k: sum(a["timings"][f"{k}_s"] for a in attempts) for k in ("train", "probe", "tests")}),
                    summarize_decisions(result.decisions) if arm not in UNTESTED_ARMS else None,
                )
                record["verdict"] = requirement_verdict(session, result.model, arm)  # what `safecompress test` would decide
                if gated:
                    record["checkpoint_gates"] = gated
                record["achieved_density"] = round(float(result.engine.density()), 6)
                record["settings"] = {k: v for k, v in settings.to_dict().items() if k not in ("out", "device", "resume")}
                record["remedy_weights"] = result.remedy_weights
                record["shipped_step"] = result.shipped_step
                record["shipped"] = None if result.shipped is None else result.shipped.summary()
                record["attempts"] = [{k: a[k] for k in ("attempt", "plan", "passed", "best_so_far")} for a in attempts]
                record["budget"] = attempts[0].get("budget") if attempts else None  # what --budget trimmed (sc-budget)
                record["final_checks"] = [
                    {"step": c["step"], "utility": c["candidates"][0]["utility"], "rmia1_auc": c["candidates"][0]["metrics"].get("rmia1_auc"), "remedy_weights": c["remedy_weights"]}
                    for c in result.final_checks
                ]
                on_record(record)
                log(
                    f"{task.name} seed {seed}: d={density:g} {arm:<19} acc {gate['test_accuracy']['value']:.4f}  RMIA {gate['attacks']['rmia']['auc']['value']:.4f}  "
                    f"loss {gate['attacks']['loss']['auc']['value']:.4f}  ({seconds:.0f}s, tests {100 * result.timers.overhead:.0f} %)"
                )
    finally:
        session.close()


def parent_masks(parent: nn.Module, settings: Any) -> dict[str, torch.Tensor]:
    """The masks every arm starts from: the parent pruned by the run's distribution and init rule."""
    from safecompress.sparse.engine import SparseEngine

    engine = SparseEngine(
        copy.deepcopy(parent),
        None,
        settings.density,
        distribution=settings.distribution,
        init=settings.init,
        seed=settings.seed,
        include=settings.include_patterns,
        exclude=settings.exclude,
        embeddings=settings.embeddings,
    )
    return {name: mask.clone() for name, mask in engine.masks.items()}


def private_arm(task: TaskSpec, seed: int, density: float, arm: str, parent: nn.Module, data: Any, recipe: Any, base: Any, references: Any, device: Any, log: Log) -> tuple[dict[str, Any], nn.Module]:
    """One DP-SGD arm: the parent's masks, the parent's initial weights, trained privately at ε;
    its record and its model."""
    from safecompress.dpsgd import PrivacyBudget, fit_private
    from safecompress.training import seeded

    settings = arm_settings(arm, density, seed, base, Path(tempfile.gettempdir()))
    started = time.perf_counter()
    masks = parent_masks(parent, settings)
    with seeded(seed, torch.device("cpu")):
        model = build_model(task, data)  # the parent's own initialisation: the parent was built by the same call
    spent = fit_private(model, data.members, recipe, PrivacyBudget(DP_ARMS[arm]), masks=masks, seed=seed, device=device)
    seconds = time.perf_counter() - started
    gate = gate_metrics(model, data, references, seed, device)
    record = _record(task, seed, density, arm, gate, seconds, None, None)
    live = sum(int(p.count_nonzero()) for name, p in model.named_parameters() if name in masks)
    record["achieved_density"] = round(live / sum(masks[name].numel() for name in masks), 6)
    record["privacy"] = spent.to_dict()
    log(
        f"{task.name} seed {seed}: d={density:g} {arm:<19} acc {gate['test_accuracy']['value']:.4f}  RMIA {gate['attacks']['rmia']['auc']['value']:.4f}  "
        f"loss {gate['attacks']['loss']['auc']['value']:.4f}  (ε {spent.epsilon:.2f} at δ {spent.delta:.1e}, noise σ {spent.noise_multiplier:.2f}; {seconds:.0f}s)"
    )
    return record, model


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
            run_seed(task, seed, device=device, rootdir=root, project_ini=project_ini, refs=plan.refs, extra_density=extra, log=log, on_record=on_record, gate_checkpoints=plan.gate_checkpoints)
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
    measured = {r["arm"] for r in records}  # a merge of runs made before an arm existed has no claim for it
    claims = [check_claim(records, arm, next_down=next_down) for arm in SAFECOMPRESS_ARMS if arm in measured] if claim_task else []
    frontier = {"points": frontier_points(records), "claim": check_frontier_claim(records)} if claim_task else None
    verdict_claim = check_verdict_claim(records, CLAIMED_ARM) if claim_task and CLAIMED_ARM in measured and "plain-dst" in measured else None
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
        "frontier": frontier,
        "verdict_claim": verdict_claim,
        "prediction": prediction_summary(records) if any(r.get("checkpoint_gates") for r in records) else None,
        "cost_ratios": cost_ratios(records, [arm for arm in SAFECOMPRESS_ARMS if arm in measured]) if claim_task else {},
    }


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs over disjoint seeds — e.g. ``--seeds 9,10`` and ``--seeds 11,`` side by
    side on two cores — or from a run that adds arms (``--arms``) to seeds measured before, with the
    summary and the claims recomputed from the pooled records. An arm and seed in more than one file
    must have the same gate numbers in each (same seed, same result), and is kept once; each arm's
    cost ratio pairs it with plain DST of its own run. Runs of different settings are refused; the
    wall time is the longest run's."""
    from safecompress.errors import UsageError

    if not parts:
        raise UsageError("nothing to merge")
    if any(part.get("benchmark") != "compress" or "records" not in part for part in parts):
        raise UsageError("only `safecompress bench compress --json` results can be merged")
    first = parts[0]
    for key in ("quick", "refs", "project_settings"):
        if any(part.get(key) != first.get(key) for part in parts[1:]):
            raise UsageError(f"cannot merge runs with different {key.replace('_', ' ')}")
    kept: dict[tuple[str, int, float, str], dict[str, Any]] = {}
    records, reproduced = [], []
    for record in (r for part in parts for r in with_own_plain_dst(part["records"])):
        run = (record["task"], record["seed"], record["density"], record["arm"])
        if run in kept:  # a run that adds arms to seeds measured before: what both ran must agree exactly
            if gate_numbers(kept[run]) != gate_numbers(record):
                raise UsageError(
                    f"{record['task']} seed {record['seed']} {record['arm']} differs between the files ({gate_numbers(kept[run])} against {gate_numbers(record)}): "
                    "merge runs over disjoint seeds, or runs that reproduce each other"
                )
            reproduced.append(f"{record['task']} seed {record['seed']} d={record['density']:g} {record['arm']}")
            continue
        kept[run] = record
        records.append(record)
    tasks: dict[str, TaskSpec] = {}
    for described in (t for part in parts for t in part["tasks"]):
        tuples = {key: tuple(described.get(key, ())) for key in ("densities", "sparser", "seeds", "arms")}
        task = TaskSpec(**{**described, **tuples})
        known = tasks.get(task.name)
        if known is not None and replace(known, seeds=(), arms=()) != replace(task, seeds=(), arms=()):
            raise UsageError(f"cannot merge runs whose {task.name} tasks differ (data, recipe, model or densities)")
        arms = {*(known.arms if known else ()), *task.arms}
        tasks[task.name] = replace(task, seeds=tuple(sorted({*(known.seeds if known else ()), *task.seeds})), arms=tuple(a for a in ARMS if a in arms))
    plan = BenchPlan(tuple(tasks.values()), refs=first["refs"], quick=first["quick"], skipped=tuple(dict.fromkeys(s for part in parts for s in part.get("skipped", []))))
    merged = _assemble(plan, records, first["project_settings"], first["environment"]["device"], max(part["total_seconds"] for part in parts), first["environment"].get("git"))
    merged["environment"] = first["environment"]
    merged["merged_from"] = [{"command": part.get("command"), "total_seconds": part["total_seconds"], "git": part["environment"].get("git")} for part in parts]
    merged["reproduced"] = reproduced  # runs in more than one file, identical in each (kept once)
    return merged


def with_own_plain_dst(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` of one run, each arm with ``plain_dst_seconds``: plain DST's wall time on the same
    task, seed and density in that run (what its cost ratio is paired with once runs are pooled)."""

    def where(record: dict[str, Any]) -> tuple[str, int, float]:
        return record["task"], record["seed"], record["density"]

    plain = {where(r): r["seconds"] for r in records if r["arm"] == "plain-dst"}
    return [r if r["arm"] == "plain-dst" or where(r) not in plain else {**r, "plain_dst_seconds": plain[where(r)]} for r in records]


def gate_numbers(record: dict[str, Any]) -> tuple[Any, ...]:
    """What two runs of one arm on one seed must share to be the same run: test accuracy and every gate AUC."""
    return (record["test_accuracy"]["value"], *(round(float(record["attacks"][name]["auc"]["value"]), 12) for name in sorted(record["attacks"])))


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
