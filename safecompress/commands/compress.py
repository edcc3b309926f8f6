"""``safecompress compress MODEL``: test-driven sparse training of a dense parent, then the gate."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from rich import box
from rich.console import Console
from rich.table import Table

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
    group.add_argument(
        "--final-checks",
        dest="final_checks",
        type=whole_number(0),
        help="checkpoints the cheap tests judge over the final phase (default 6); with the updates' checkpoints, the best passing one ships",
    )
    group.add_argument("--no-remedies", dest="remedies", action="store_false", default=None, help="never switch on remedies (selection only)")
    group.add_argument("--attempts", type=whole_number(1), help="runs at most, while no judged checkpoint passes; each starts with what the last learned (default 2)")
    group.add_argument(
        "--budget",
        type=finite_float,
        metavar="B",
        help="at most B times the work of training alone (counted, not timed): trims attempts, costly remedies, candidates and final checks to fit; the report says what",
    )
    group.add_argument("--include", action="append", metavar="GLOB", help="mask the parameters whose names match (repeatable; default: Conv/Linear/attention weights)")
    group.add_argument("--exclude", action="append", metavar="GLOB", help="never mask the parameters whose names match (repeatable)")
    group.add_argument("--embeddings", action="store_true", default=None, help="mask nn.Embedding weights too")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="training under bf16 autocast (default auto: on CUDA where supported; tests judge in fp32)")
    group.add_argument("--compile", action="store_true", default=None, help="wrap the training step's model in torch.compile")
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

    cli = {
        name: getattr(args, name, None)
        for name in (
            "density",
            "epochs",
            "candidates",
            "probe_steps",
            "lambda_",
            "updates",
            "final_checks",
            "remedies",
            "attempts",
            "include",
            "exclude",
            "embeddings",
            "precision",
            "compile",
            "budget",
            "out",
            "resume",
            "overwrite",
            "seed",
            "device",
        )
    }
    return CompressSettings.from_sources(cli, dict(config.ini.get("compress", {})))


def compress(
    session: Any,
    model_path: Path,
    settings: Any,
    console: Console,
    quiet: bool,
    arch: Optional[str] = None,
    arch_kwargs: Optional[dict[str, Any]] = None,
    ranks: Any = None,
    output_lock: Any = None,
) -> int:
    """The driver's job with a progress display and the summary table; returns the gate's exit
    status. Under torchrun (``ranks``) only rank 0 prints."""
    from safecompress.commands.progress import CompressProgress
    from safecompress.driver.job import run_compress

    main = ranks is None or ranks.is_main
    with CompressProgress(console, quiet or not main) as progress:
        result = run_compress(session, model_path, settings, observer=progress.event, arch=arch, arch_kwargs=arch_kwargs, ranks=ranks, output_lock=output_lock)
    if main:
        show_summary(console, result.report)
    return result.exitstatus


WIDE_TABLE = 120  # columns the one-line-per-metric table needs; narrower terminals get stacked cells


def comparison_table(report: dict[str, Any], width: int) -> Table:
    """Dense vs compressed, one row per metric. Below ``WIDE_TABLE`` columns (an 80-column terminal
    or CI log) each interval goes under its value and outcomes are short, so rows do not wrap."""
    from safecompress.driver.report import comparison_cells, comparison_rows, outcome_text

    wide = width >= WIDE_TABLE
    dense, compressed = report["models"]["dense"], report["models"]["compressed"]
    share = f"maskable: {100 * compressed['maskable_share']:.0f} % of parameters"
    title = "dense parent vs compressed (95 % intervals)"
    if wide:
        table = Table(title=title, title_justify="left")
        for column in ("metric (evidence)", "role, limit", "dense", "compressed", "Δ", "outcome"):
            table.add_column(column)
    else:  # no vertical rules, names fold, numbers never break; Δ's interval is in report.md
        table = Table(title=title, title_justify="left", caption=share, caption_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("metric (evidence)", overflow="fold")
        table.add_column("role, limit", overflow="fold")
        for column in ("dense", "compressed", "Δ", "outcome"):
            table.add_column(column, no_wrap=True)
    table.add_row("maskable density", "", f"{dense['maskable_density']:.4f}", f"{compressed['maskable_density']:.4f}", "", "")
    table.add_row("whole-model density", "", f"{dense['whole_model_density']:.4f}", f"{compressed['whole_model_density']:.4f}", "", share if wide else "")
    if wide:
        for row in comparison_rows(report):
            table.add_row(*(markup_safe(cell) for cell in row))
        return table
    for cells in comparison_cells(report):
        stacked = ["\n".join(part for part in (cells[key], cells[f"{key}_interval"]) if part) for key in ("dense", "compressed")]
        table.add_row(cells["metric"], cells["limit"], *stacked, cells["delta"], outcome_text(cells, short=True))
    return table


def show_summary(console: Console, report: dict[str, Any]) -> None:
    from safecompress.driver.report import processes_text

    table = comparison_table(report, console.width)
    console.print(table)
    timings = report["timings"]
    console.print(
        f"{len(report['updates'])} topology updates in {timings['total_s']:.1f}s: training {timings['train_s']:.1f}s, candidate probing "
        f"{timings['probe_s']:.1f}s, in-loop tests {timings['tests_s']:.1f}s ({100 * timings['overhead_fraction']:.0f} % overhead), "
        f"baseline and reference models {timings['setup_s']:.1f}s; device {report['device']}{processes_text(report)}",
        highlight=False,
    )
    from safecompress.driver.diagnosis import diagnosis_lines
    from safecompress.driver.report import shipped_line

    shipped = report.get("shipped")
    console.print(markup_safe(shipped_line(report)), style="red" if shipped is not None and not shipped["passed"] else None, highlight=False)
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {markup_safe(warning)}", highlight=False)
    for line in diagnosis_lines(report.get("diagnosis")):
        console.print(markup_safe(line), highlight=False)
    verdict = "[green]gate passed[/green]" if report["exitstatus"] == 0 else "[red]gate failed[/red]"
    console.print(f"{verdict}: outputs in {markup_safe(report['settings']['out'])} (model.safetensors, report.md, report.html, decisions.jsonl)")


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.config import config_from_args
    from safecompress.runner.session import wrap_session

    config = config_from_args(args, pm, "compress")
    settings = settings_from(args, config)
    if config.getoption("tests") and not args.paths:
        args.paths = None  # the ini's tests list applies

    def body(session: Any) -> int:
        from safecompress.distributed import rank_device, ranks_from_environment

        arch = config.getoption("arch")
        arch_kwargs = {"num_classes": config.getoption("num_classes")} if config.getoption("num_classes") else {}
        ranks = ranks_from_environment()  # torchrun --nproc-per-node N -m safecompress compress …
        session.device = rank_device(session.device)
        return compress(session, args.model, settings, console, bool(args.quiet), arch, arch_kwargs, ranks)

    try:
        return wrap_session(config, body, console)
    finally:
        from safecompress.distributed import leave_group

        leave_group()
