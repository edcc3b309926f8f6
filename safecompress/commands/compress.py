"""``safecompress compress MODEL``: test-driven sparse training of a dense parent, then the gate."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from safecompress.errors import UsageError
from safecompress.textsafe import markup_safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import add_model_options, add_run_options, finite_float, whole_number

    parser.add_argument("model", type=Path, help="the dense parent: model file or Hugging Face folder")
    group = parser.add_argument_group("compression")
    group.add_argument("--density", type=finite_float, help="fraction of maskable weights kept (default 0.1)")
    group.add_argument("--epochs", type=whole_number(1), help="training epochs (default: the recipe's)")
    group.add_argument("--candidates", type=whole_number(1), help="candidate masks per topology update (default 4)")
    group.add_argument("--probe-steps", dest="probe_steps", type=whole_number(0), help="fine-tune steps per candidate before testing (default 8)")
    group.add_argument("--lambda", dest="lambda_", type=finite_float, help="weight of safety risk against accuracy in selection (default 1)")
    group.add_argument("--updates", type=whole_number(0), help="number of topology updates (default 20)")
    group.add_argument("--final-checks", dest="final_checks", type=whole_number(0), help="checkpoints tested over the final phase; the best ships (default 6, 0: the last step ships)")
    group.add_argument("--no-remedies", dest="remedies", action="store_false", default=None, help="never switch on remedies (selection only)")
    group.add_argument("--out", type=Path, help="output folder (default safecompress-out)")
    group.add_argument("--resume", action="store_true", default=None, help="continue the run in --out from its checkpoint.pt")
    group.add_argument("--overwrite", action="store_true", default=None, help="replace an earlier run's outputs in --out (refused otherwise)")
    tests = parser.add_argument_group("safety tests")
    tests.add_argument("--tests", dest="paths", action="append", type=Path, help="test files or folders (repeatable)")
    tests.add_argument("-k", dest="keyword", metavar="EXPR", help="only tests whose names match EXPR")
    tests.add_argument("-m", dest="markexpr", metavar="EXPR", help="only tests whose marks match EXPR")
    add_run_options(parser)
    add_model_options(parser)


def settings_from(args: argparse.Namespace, config: Any) -> Any:
    from safecompress.driver.settings import CompressSettings

    cli = {name: getattr(args, name, None) for name in ("density", "epochs", "candidates", "probe_steps", "lambda_", "updates", "final_checks", "remedies", "out", "resume", "overwrite", "seed", "device")}
    return CompressSettings.from_sources(cli, dict(config.ini.get("compress", {})))


def recipe_for(session: Any) -> Any:
    """The ``train_recipe`` fixture: ``[tool.safecompress.recipe]`` unless a conftest overrides it."""
    from safecompress.training import TrainRecipe

    recipe = session.fixture_value("train_recipe")
    if not isinstance(recipe, TrainRecipe):
        raise UsageError(f"the train_recipe fixture returned {type(recipe).__name__}, not safecompress.training.TrainRecipe")
    return recipe


def compress(session: Any, model_path: Path, settings: Any, console: Console, quiet: bool, arch: Optional[str] = None, arch_kwargs: Optional[dict[str, Any]] = None) -> tuple[int, dict[str, Any]]:
    """The whole job inside a started session; returns (exit status, report)."""
    from safecompress.cli import load_model_for_session
    from safecompress.driver.gate import REPORT_SCHEMA, REPORT_SCHEMA_VERSION, compare, exit_status, run_gate, versions
    from safecompress.driver.identity import run_identity
    from safecompress.driver.loop import CompressionLoop
    from safecompress.driver.outputs import prepare_output_folder
    from safecompress.driver.progress import CompressProgress
    from safecompress.driver.report import write_reports
    from safecompress.plugins import collect_registry
    from safecompress.sparse import export_state_dict, save_sparse_artifact

    started = time.perf_counter()
    prepare_output_folder(settings.out, resume=settings.resume, overwrite=settings.overwrite)
    parent, info = load_model_for_session(session, model_path)
    require_weights_kept(parent, settings.density)
    session.collect()
    if not session.items:
        raise UsageError("no safety tests collected: compress needs at least one (see --tests, -k, -m)")
    data = session.fixture_value("data")
    recipe = recipe_for(session)
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
    loop = CompressionLoop(session, parent, data, recipe, settings, remedies, identity=identity)
    with CompressProgress(console, quiet, settings.updates) as progress:
        loop.on_event = progress.event
        result = loop.run()
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
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
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
    show_summary(console, report)
    return report["exitstatus"], report


def require_weights_kept(model: Any, density: float) -> None:
    """A density that rounds to no kept weight would ship an all-zero model: refuse it up front."""
    from safecompress.sparse import find_maskable

    maskable = sum(layer.param.numel() for layer in find_maskable(model))
    if maskable == 0:
        raise UsageError(f"{type(model).__name__} has no maskable Conv/Linear weights: there is nothing to compress")
    if round(density * maskable) < 1:
        raise UsageError(f"--density {density:g} keeps no weight of the {maskable:,} maskable weights (the smallest useful density is {1 / maskable:.2g})")


def show_summary(console: Console, report: dict[str, Any]) -> None:
    from safecompress.driver.report import comparison_rows

    table = Table(title="dense parent vs compressed (95 % intervals)", title_justify="left")
    for column in ("metric", "dense", "compressed", "Δ", "outcome"):
        table.add_column(column)
    table.add_row("density", f"{report['models']['dense']['density'] or 1.0:.3f}", f"{report['models']['compressed']['density']:.3f}", "", "")
    for row in comparison_rows(report):
        table.add_row(*row)
    console.print(table)
    timings = report["timings"]
    console.print(
        f"{len(report['updates'])} topology updates in {timings['total_s']:.1f}s: training {timings['train_s']:.1f}s, candidate probing "
        f"{timings['probe_s']:.1f}s, in-loop tests {timings['tests_s']:.1f}s ({100 * timings['overhead_fraction']:.0f} % overhead), "
        f"baseline and reference models {timings['setup_s']:.1f}s",
        highlight=False,
    )
    verdict = "[green]gate passed[/green]" if report["exitstatus"] == 0 else "[red]gate failed[/red]"
    console.print(f"{verdict}: outputs in {markup_safe(report['settings']['out'])} (model.safetensors, report.md, report.html, decisions.jsonl)")


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.cli import make_config
    from safecompress.runner.session import wrap_session

    config = make_config(args, pm, "compress")
    settings = settings_from(args, config)
    if config.getoption("tests") and not args.paths:
        args.paths = None  # the ini's tests list applies

    def body(session: Any) -> int:
        arch = config.getoption("arch")
        arch_kwargs = {"num_classes": config.getoption("num_classes")} if config.getoption("num_classes") else {}
        status, _ = compress(session, args.model, settings, console, bool(args.quiet), arch, arch_kwargs)
        return status

    return wrap_session(config, body, console)
