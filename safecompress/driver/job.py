"""The compression job, the driver's one entry point: dense parent in, gated sparse model and report out.

``run_compress`` owns every step (METHOD.md §3): output folder, parent, baseline (the cheap tests on
the dense parent, which also builds the session-wide fixtures once), the test-driven loop, the gate
on both models, the artifact, the export and the report, whose schema it owns. The CLI, the demo and
users call it; it prints nothing and reports progress only through ``observer(kind, payload)``
(the loop's events, then ``"gate"`` when training is over).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from safecompress.driver.gate import compare, exit_status, run_gate, versions
from safecompress.driver.identity import run_identity
from safecompress.driver.loop import CompressionLoop
from safecompress.driver.outputs import prepare_output_folder
from safecompress.driver.report import write_reports
from safecompress.driver.settings import CompressSettings
from safecompress.driver.updates import check_strategies, growth_registry
from safecompress.errors import UsageError
from safecompress.plugins import collect_registry
from safecompress.runner.session import SafetySession

COMPRESS_REPORT_SCHEMA = "safecompress.compress-report"
COMPRESS_REPORT_SCHEMA_VERSION = 1

Observer = Callable[[str, dict[str, Any]], None]


@dataclass
class CompressResult:
    """What a compression run produced: the gate's exit status and the report written to ``out``."""

    exitstatus: int
    report: dict[str, Any]


def require_weights_kept(model: Any, density: float) -> None:
    """A density that rounds to no kept weight would ship an all-zero model: refuse it up front."""
    from safecompress.sparse import find_maskable

    maskable = sum(layer.param.numel() for layer in find_maskable(model))
    if maskable == 0:
        raise UsageError(f"{type(model).__name__} has no maskable Conv/Linear weights: there is nothing to compress")
    if round(density * maskable) < 1:
        raise UsageError(f"--density {density:g} keeps no weight of the {maskable:,} maskable weights (the smallest useful density is {1 / maskable:.2g})")


def run_compress(
    session: SafetySession,
    model_path: Path,
    settings: CompressSettings,
    *,
    observer: Optional[Observer] = None,
    arch: Optional[str] = None,
    arch_kwargs: Optional[dict[str, Any]] = None,
) -> CompressResult:
    """The whole job inside a started session. ``arch``/``arch_kwargs`` are recorded in the artifact
    so it reloads without code (a registered name; see docs/security.md)."""
    from safecompress.sparse import export_state_dict, save_sparse_artifact

    notify = observer or (lambda kind, payload: None)
    started = time.perf_counter()
    prepare_output_folder(settings.out, resume=settings.resume, overwrite=settings.overwrite)
    check_strategies(settings, growth_registry(session.pm))
    parent, info = session.load_model(model_path)
    require_weights_kept(parent, settings.density)
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
    )
    session.dense_model = parent.to(session.device).eval()
    # Baseline: the cheap tests on the dense parent, before training. It builds the session-wide
    # fixtures (audit sets, reference models) once, timed apart from the per-candidate overhead.
    baseline_started = time.perf_counter()
    session.set_model(session.dense_model, label="dense parent (baseline)")
    baseline = session.run(select=lambda item: item.cost == "cheap")
    setup_seconds = time.perf_counter() - baseline_started
    result = CompressionLoop(session, parent, data, recipe, settings, remedies, on_event=notify, identity=identity).run()
    notify("gate", {})
    compressed_gate = run_gate(session, result.model, "compressed", data, result.engine.density())
    dense_gate = run_gate(session, session.dense_model, "dense parent", data, None)
    out = settings.out
    artifact = save_sparse_artifact(
        result.model,
        out / "model.safetensors",
        result.engine.masks,
        arch=arch,
        arch_kwargs=arch_kwargs or {},
        extra_metadata={"parent": str(model_path), "density": f"{result.engine.density():.6f}"},
    )
    export_state_dict(result.model, out / "model_dense_export.pt")
    timers = result.timers.to_dict()
    timers["setup_s"] = round(setup_seconds, 3)
    timers["total_s"] = round(time.perf_counter() - started, 3)
    report = {
        "schema": COMPRESS_REPORT_SCHEMA,
        "schema_version": COMPRESS_REPORT_SCHEMA_VERSION,
        "versions": versions(),
        "device": str(session.device),
        "settings": settings.to_dict(),
        "recipe": recipe.describe(),
        "parent": info,
        "data": data.provenance(),
        "models": {"compressed": compressed_gate.to_dict(), "dense": dense_gate.to_dict()},
        "comparison": compare(compressed_gate, dense_gate),
        "artifact": {
            "path": "model.safetensors",
            "file_bytes": artifact.file_bytes,
            "ratio_to_information_minimum": artifact.ratio_to_info_min,
            "ratio_to_dense": artifact.ratio_to_dense,
        },
        "layers": [layer.as_dict() for layer in result.engine.layer_table()],
        "baseline": {"seconds": round(setup_seconds, 3), "tests": [r.to_dict() for r in baseline]},
        "updates": result.decisions,
        "final_checks": result.final_checks,
        "shipped_step": result.shipped_step,
        "remedy_weights": result.remedy_weights,
        "timings": timers,
        "events": result.events,
        "exitstatus": exit_status(compressed_gate),
    }
    write_reports(report, out)
    return CompressResult(report["exitstatus"], report)
