"""The compression job, the driver's one entry point: dense parent in, gated sparse model and report out.

``run_compress`` owns every step (METHOD.md §3): output folder, parent, baseline (the cheap tests on
the dense parent, which also builds the session-wide fixtures once), the test-driven loop and its
attempts (when no judged checkpoint passed, a rerun that starts with what the last one learned),
the gate on both models, the artifact, the export and the report, whose schema it owns. The CLI,
the demo and users call it; it prints nothing and reports progress only through
``observer(kind, payload)`` (``"warning"``, the loop's events, ``"attempt"``, then ``"gate"`` when
training is over).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from safecompress.attacks.data_structures import attack_rows
from safecompress.distributed import Ranks
from safecompress.driver.budget import BudgetPlan, Work, count_judged_rows, plan_budget
from safecompress.driver.checkpoint import checkpoint_attempt
from safecompress.driver.diagnosis import diagnose
from safecompress.driver.gate import compare, exit_status, run_gate, versions
from safecompress.driver.gate_record import GATE_KEY, make_gate_record
from safecompress.driver.identity import run_identity
from safecompress.driver.loop import CompressionLoop, Evaluate, LoopResult, Timers, cheap_tests, fitting_updates, tests_of_cost, training_steps
from safecompress.driver.outputs import OutputLock, prepare_output_folder
from safecompress.driver.report import write_reports
from safecompress.driver.selection import hook_selector, metric_roles
from safecompress.driver.settings import CompressSettings
from safecompress.driver.shipping import ShippingRecord, load_point
from safecompress.driver.updates import check_strategies, growth_registry
from safecompress.errors import UsageError
from safecompress.fsutil import append_line, json_safe
from safecompress.plugins import collect_registry
from safecompress.runner.session import SafetySession

COMPRESS_REPORT_SCHEMA = "safecompress.compress-report"
COMPRESS_REPORT_SCHEMA_VERSION = 2  # 2: attempts, judged checkpoints, roles, both densities, diagnosis

log = logging.getLogger(__name__)

Observer = Callable[[str, dict[str, Any]], None]


@dataclass
class CompressResult:
    """What a compression run produced: the gate's exit status and the report written to ``out``."""

    exitstatus: int
    report: dict[str, Any]


def require_weights_kept(model: Any, settings: CompressSettings) -> list[str]:
    """A density that rounds to no kept weight would ship an all-zero model: refuse it up front.
    Returns the names of the maskable weights (the run's masking scope)."""
    from safecompress.sparse import find_maskable

    layers = find_maskable(model, settings.include_patterns, settings.exclude, settings.embeddings)
    maskable = sum(layer.param.numel() for layer in layers)
    density = settings.density
    if maskable == 0:
        raise UsageError(f"{type(model).__name__} has no maskable weights in scope (Conv/Linear/attention; see --include, --exclude, --embeddings): there is nothing to compress")
    if round(density * maskable) < 1:
        raise UsageError(f"--density {density:g} keeps no weight of the {maskable:,} maskable weights (the smallest useful density is {1 / maskable:.2g})")
    empty = _emptied_layers(layers, settings)
    if empty:
        names = ", ".join(empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
        raise UsageError(f"--density {density:g} keeps no weight in {names} ({settings.distribution} allocation): the model would ship with dead layers; raise --density")
    return [layer.name for layer in layers]


def _emptied_layers(layers: list[Any], settings: CompressSettings) -> list[str]:
    """The maskable layers the initial allocation gives no weight (per-layer counts are kept by
    every topology update, so a layer empty at the start stays empty)."""
    from safecompress.sparse.allocation import initial_masks

    masks = initial_masks(layers, settings.density, settings.distribution, settings.init if settings.distribution != "magnitude_global" else "magnitude")  # type: ignore[arg-type]
    return [layer.name for layer, mask in zip(layers, masks) if not bool(mask.any())]


def attempt_summary(result: LoopResult, attempt: int, plan: dict[str, Any]) -> dict[str, Any]:
    shipped = result.shipping.shipped if result.shipping is not None else None
    return {
        "attempt": attempt,
        "plan": plan,
        "passed": bool(shipped is not None and shipped.passed),
        "best_so_far": None if shipped is None else shipped.summary(),
        "learned": result.learned.to_dict(),
        "timings": result.timers.to_dict(),
        "events": list(result.events),
    }


def budget_settings(session: SafetySession, parent: Any, settings: CompressSettings, loop_args: dict[str, Any]) -> tuple[CompressSettings, Optional[BudgetPlan]]:
    """``settings`` trimmed to ``settings.budget`` (unchanged without one), and the plan that did it."""
    if settings.budget is None:
        return settings, None
    data, recipe = loop_args["data"], loop_args["recipe"]
    evaluate = loop_args.get("evaluate") or cheap_tests(session)
    steps = training_steps(settings, recipe, len(data.members))
    work = Work(train_rows=steps * recipe.batch_size, judged_rows=count_judged_rows(evaluate, parent), batch_size=recipe.batch_size)
    ladders = [report.ladder for report in loop_args.get("baseline") or [] if report.ladder]
    return plan_budget(settings, work, fitting_updates(settings.updates, steps), ladders, loop_args.get("remedy_factories") or {})


def validation_tests(session: SafetySession) -> Optional[Evaluate]:
    """The suite's ``validation`` tests as an ``evaluate`` (None when it has none): they judge only
    the point about to ship, on stronger evidence than the in-loop audit (docs/driver.md)."""
    if not any(item.cost == "validation" for item in session.items):
        return None
    return tests_of_cost(session, "validation")


def validate_shipping(result: LoopResult, validate: Evaluate, ranks: Ranks, log_path: Path) -> list[str]:
    """Validate the shortlist best first, until a point is confirmed or none is left, then the point
    that would ship if validation has not seen it (:meth:`ShippingRecord.next_to_validate`; each
    point once, so this ends). The model and engine end holding the point that ships; returns the
    lines it logged."""
    record, lines = result.shipping, []
    started = time.perf_counter()
    while record is not None and (point := record.next_to_validate()) is not None:
        load_point(result.model, result.engine, point)
        reports = ranks.from_main(validate(result.model, f"{point.label}, validation") if ranks.is_main else None)
        line = record.validate(point, reports)
        lines.append(line)
        if ranks.is_main:
            entry = {"kind": "validation", "point": point.label, "step": point.step, "attempt": point.attempt, "passed": point.passed, "tests": [r.to_dict() for r in reports], "kept": line}
            append_line(log_path, json.dumps(json_safe(entry)))
    if record is not None and record.shipped is not None:
        result.shipped = record.shipped
        load_point(result.model, result.engine, result.shipped)
    result.model.eval()
    result.timers.tests += time.perf_counter() - started
    result.events.extend(lines)
    return lines


def run_attempts(session: SafetySession, parent: Any, settings: CompressSettings, notify: Observer, *, validation: bool = True, **loop_args: Any) -> tuple[LoopResult, list[dict[str, Any]]]:
    """The loop, rerun with what it learned while no judged checkpoint passes (``settings.attempts``
    runs at most); a ``--resume`` continues the attempt its checkpoint belongs to. With the suite's
    ``validation`` tests (unless ``validation`` is False: the benchmark's untested arms) the point
    about to ship is validated after each attempt, and passing means passing validation. With a
    ``budget`` the settings are trimmed first (:mod:`safecompress.driver.budget`); the plan is in
    every attempt's summary."""
    settings, budget = budget_settings(session, parent, settings, loop_args)
    if budget is not None:
        notify("budget", budget.to_dict())
        loop_args["excluded_remedies"] = frozenset(budget.excluded_remedies)
    first = (checkpoint_attempt(settings.out / "checkpoint.pt") or 1) if settings.resume else 1
    validate = validation_tests(session) if validation else None
    ranks = loop_args.get("ranks") or Ranks()
    plan, shipping, earlier = None, None, []
    if validate is not None:  # the record knows which in-loop targets validation will replace, for its shortlist
        validated = frozenset(item.serves for item in session.items if item.cost == "validation" and item.serves)
        shipping = ShippingRecord(hook_selector(session.pm, session.config), settings.lambda_, validated)
    for attempt in range(first, settings.attempts + 1):
        loop = CompressionLoop(
            session, parent, settings=settings, attempt=attempt, plan=plan, shipping=shipping, earlier_attempts=earlier, resume=settings.resume and attempt == first, on_event=notify, **loop_args
        )
        result = loop.run()
        if validate is not None:
            validate_shipping(result, validate, ranks, settings.out / "decisions.jsonl")
        earlier = loop.earlier_attempts + [attempt_summary(result, attempt, loop.steering.controller.plan.to_dict())]
        if budget is not None:
            earlier[-1]["budget"] = budget.to_dict()
        shipped = result.shipped
        if shipped is None or shipped.passed or attempt == settings.attempts:
            return result, earlier
        plan, shipping = result.learned, result.shipping
        notify("attempt", {"attempt": attempt + 1, "attempts": settings.attempts, "plan": plan.to_dict(), "best": shipped.summary()})
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


def logged_decisions(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def total_timers(attempts: list[dict[str, Any]]) -> dict[str, float]:
    timers = Timers()
    for summary in attempts:
        t = summary["timings"]
        timers.train += t["train_s"]
        timers.probe += t["probe_s"]
        timers.tests += t["tests_s"]
    return timers.to_dict()


def run_compress(
    session: SafetySession,
    model_path: Path,
    settings: CompressSettings,
    *,
    observer: Optional[Observer] = None,
    arch: Optional[str] = None,
    arch_kwargs: Optional[dict[str, Any]] = None,
    ranks: Optional[Ranks] = None,
    output_lock: Optional[OutputLock] = None,
) -> CompressResult:
    """The whole job inside a started session. ``arch``/``arch_kwargs`` are recorded in the artifact
    so it reloads without code (a registered name; see docs/security.md). Under torchrun (``ranks``)
    every rank trains, rank 0 writes the outputs and runs the gate, and the others return its exit
    status with an empty report. Rank 0 holds ``settings.out`` for the whole run (:class:`OutputLock`)
    unless the caller already does (``output_lock``: the demo, which writes its parent there first)."""
    ranks = ranks or Ranks()
    held = output_lock is not None and output_lock.holds(settings.out)
    with contextlib.nullcontext() if held or not ranks.is_main else OutputLock(settings.out):
        return _run_compress(session, model_path, settings, observer, arch, arch_kwargs, ranks)


def _run_compress(
    session: SafetySession,
    model_path: Path,
    settings: CompressSettings,
    observer: Optional[Observer],
    arch: Optional[str],
    arch_kwargs: Optional[dict[str, Any]],
    ranks: Ranks,
) -> CompressResult:
    from safecompress.sparse import export_state_dict, model_densities, save_sparse_artifact, scope_warning

    notify = (observer if ranks.is_main else None) or (lambda kind, payload: None)
    started = time.perf_counter()
    ranks.main_first(lambda: prepare_output_folder(settings.out, resume=settings.resume, overwrite=settings.overwrite))
    check_strategies(settings, growth_registry(session.pm))
    parent, info = session.load_model(model_path)
    scope = require_weights_kept(parent, settings)
    session.collect()
    if not session.items:
        raise UsageError("no safety tests collected: compress needs at least one (see --tests, -k, -m)")
    data = session.fixture_value("data")
    recipe = session.train_recipe()
    remedies = collect_registry(session.pm, "safecompress_register_remedies")
    identity = run_identity(
        model_path,
        session.config.thresholds,
        [item.nodeid for item in session.items],
        {split.name: split.fingerprint() for split in (data.members, data.non_members, data.population, data.test)},
        world_size=ranks.world_size,
    )
    session.dense_model = parent.to(session.device).eval()
    # Baseline: the cheap tests on the dense parent, before training. It builds the session-wide
    # fixtures (audit sets, reference models) once, timed apart from the per-candidate overhead.
    baseline_started = time.perf_counter()
    session.set_model(session.dense_model, label="dense parent (baseline)")
    baseline = ranks.from_main(session.run(select=lambda item: item.cost == "cheap"))  # every rank builds its fixtures; rank 0's verdicts steer
    setup_seconds = time.perf_counter() - baseline_started
    info = {**info, **model_densities(parent, scope)}  # the run's masking scope, not the default one
    roles = metric_roles(baseline)
    warnings = list(roles.warnings) + session.role_notes() + [str(w) for r in baseline for w in r.info.get("warnings", [])]
    scope_problem = scope_warning(model_densities(parent, scope))
    if scope_problem:
        warnings.append(scope_problem)
    for message in warnings if ranks.is_main else []:
        log.warning(message)
        notify("warning", {"message": message})
    result, attempts = run_attempts(session, parent, settings, notify, data=data, recipe=recipe, remedy_factories=remedies, identity=identity, baseline=baseline, ranks=ranks)
    if not ranks.is_main:
        return CompressResult(ranks.from_main(None), {})
    notify("gate", {})
    compressed_densities = {**model_densities(result.model, result.engine.names), "masked_density": result.engine.density()}  # kept by the masks: a kept weight can be exactly 0
    compressed_gate = run_gate(session, result.model, "compressed", data, compressed_densities)
    dense_gate = run_gate(session, session.dense_model, "dense parent", data, model_densities(session.dense_model, scope))
    out = settings.out
    artifact = save_sparse_artifact(
        result.model,
        out / "model.safetensors",
        result.engine.masks,
        arch=arch,
        arch_kwargs=arch_kwargs or {},
        extra_metadata={"parent": str(model_path), GATE_KEY: make_gate_record(session, identity, model_path, out / "model.safetensors", settings.seed).to_metadata()},
    )
    export_state_dict(result.model, out / "model_dense_export.pt")
    if hasattr(result.model, "save_pretrained"):  # a transformers model: also a folder transformers loads as is
        from safecompress.modelio import save_model

        save_model(result.model, out / "hf", format="hf")
    timers = total_timers(attempts)
    timers["setup_s"] = round(setup_seconds, 3)
    timers["total_s"] = round(time.perf_counter() - started, 3)
    decisions = logged_decisions(settings.out / "decisions.jsonl")
    judged = result.shipping.seen if result.shipping is not None else []
    compressed_report = compressed_gate.to_dict()
    report = {
        "schema": COMPRESS_REPORT_SCHEMA,
        "schema_version": COMPRESS_REPORT_SCHEMA_VERSION,
        "versions": versions(),
        "device": str(session.device),
        "processes": ranks.world_size,
        "settings": settings.to_dict(),
        "recipe": recipe.describe(),
        "parent": info,
        "data": {**data.provenance(), "attack_rows": attack_rows(data, settings.seed)},  # rebuild the gate's attack inputs
        "roles": roles.to_dict(),
        "warnings": warnings,
        "models": {"compressed": compressed_report, "dense": dense_gate.to_dict()},
        "comparison": compare(compressed_gate, dense_gate),
        "artifact": {
            "path": "model.safetensors",
            "file_bytes": artifact.file_bytes,
            "ratio_to_information_minimum": artifact.ratio_to_info_min,
            "ratio_to_dense": artifact.ratio_to_dense,
        },
        "layers": [layer.as_dict() for layer in result.engine.layer_table()],
        "baseline": {"seconds": round(setup_seconds, 3), "tests": [r.to_dict() for r in baseline], "decision": result.baseline},
        "attempts": attempts,
        "updates": [d for d in decisions if d["kind"] == "update"],
        "final_checks": [d for d in decisions if d["kind"] == "final-check"],
        "judged": judged,
        "shipped": None if result.shipped is None else result.shipped.summary(),
        "shipped_step": result.shipped_step,
        "remedy_weights": result.remedy_weights,
        "timings": timers,
        "budget": attempts[0].get("budget") if attempts else None,
        "events": [f"attempt {a['attempt']}: {event}" for a in attempts for event in a.get("events", [])],
        "diagnosis": diagnose(compressed_report["tests"], decisions, judged, attempts, settings.to_dict()),
        "exitstatus": exit_status(compressed_gate),
    }
    write_reports(report, out)
    ranks.from_main(report["exitstatus"])
    return CompressResult(report["exitstatus"], report)
