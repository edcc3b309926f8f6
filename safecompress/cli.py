"""The ``safecompress`` command line. Each sub-command parses its options, then runs inside
:func:`~safecompress.runner.session.wrap_session` (or the same error discipline), so every way a run
ends maps to pytest's exit codes with a one-line message."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence

from rich.console import Console

from safecompress import __version__
from safecompress.config import MAX_SEED, config_from_args
from safecompress.errors import ExitCode, SafeCompressError, UsageError
from safecompress.textsafe import markup_safe, printable

#: Sub-commands implemented elsewhere: name -> "module" exposing ``add_arguments(parser)`` and ``run(args, console)``.
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "compress": ("safecompress.commands.compress", "compress a dense model by test-driven sparse training, then gate it"),
    "audit": ("safecompress.commands.audit", "run one membership attack against a model and print its metrics with intervals"),
    "bench": ("safecompress.commands.bench", "benchmarks: sparse engine throughput and sizes, attack scoring cost"),
    "demo": ("safecompress.commands.demo", "train a small CNN on embedded Fashion-MNIST, compress it to d=0.1, show dense vs compressed"),
    "init": ("safecompress.commands.init", "scaffold a project here: [tool.safecompress], a data fixture, safety_tests/ using the library suite"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; pytest's code for a usage error is 4."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def finite_float(text: str) -> float:
    """An argparse type: a number that is not NaN or ±inf (a NaN limit makes a gate that never fails)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def whole_number(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (and at most ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is above the maximum {maximum}")
        return value

    parse.__name__ = f"integer ≥ {minimum}"
    return parse


#: An argparse type for seeds: numpy's legacy seeding accepts 0 to 2**32 - 1, and so do we.
seed_number = whole_number(0, MAX_SEED)


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """Selection, output and run options shared by ``test``, ``compress`` and ``audit``."""
    group = parser.add_argument_group("selection")
    group.add_argument("-k", dest="keyword", metavar="EXPR", help="only tests whose names match EXPR (and/or/not, substrings)")
    group.add_argument("-m", dest="markexpr", metavar="EXPR", help="only tests whose marks match EXPR, e.g. 'cheap', 'not gate'")
    group.add_argument("--cost", choices=("cheap", "gate"), help="only tests of this cost")
    group.add_argument("-x", "--exitfirst", action="store_true", default=None, help="stop after the first failure or error")
    out = parser.add_argument_group("reports")
    out.add_argument("--junitxml", metavar="FILE", help="write JUnit XML (metrics as <properties>)")
    out.add_argument("--json", metavar="FILE", help="write the JSON report (schema safecompress.report/1)")
    out.add_argument("--report-md", dest="report_md", metavar="FILE", help="write a Markdown summary (for CI job summaries)")
    out.add_argument("--report", action="append", metavar="FORMAT=FILE", help="write a report in any registered format")
    add_run_options(parser)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Device, seed, thresholds, root and verbosity: every command that runs tests takes them."""
    run = parser.add_argument_group("run")
    run.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
    run.add_argument("--seed", type=seed_number, help="seed for every test (default 0)")
    run.add_argument("--threshold", action="append", metavar="NAME=VALUE", help="set or override a threshold")
    run.add_argument("--rootdir", type=Path, help="project root (default: nearest pyproject.toml with [tool.safecompress])")
    run.add_argument("-q", "--quiet", action="count", default=0, help="less output (plain lines for CI logs)")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more output (tracebacks)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model loading")
    group.add_argument("--arch", help="architecture for a bare state dict: torchvision:NAME or package.module:factory")
    group.add_argument("--num-classes", dest="num_classes", type=whole_number(1), help="number of classes passed to the architecture")
    group.add_argument(
        "--trust-pickle",
        dest="trust_pickle",
        action="store_true",
        help="allow a whole pickled module (unpickling runs arbitrary code: only for files you trust)",
    )
    group.add_argument(
        "--trust-remote-code",
        dest="trust_remote_code",
        action="store_true",
        help="allow a Hugging Face folder's own Python code (auto_map): only for folders you trust",
    )
    group.add_argument(
        "--trust-torchscript",
        dest="trust_torchscript",
        action="store_true",
        help="allow a TorchScript archive (its program runs on load and on every forward and can write files: only for files you trust)",
    )


def build_parser(pm: Any) -> ArgumentParser:
    parser = ArgumentParser(prog="safecompress", description="Test-driven model compression: safety tests as pytest-style functions.")
    parser.add_argument("--version", action="version", version=f"safecompress {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    test = commands.add_parser("test", help="run the safety tests against one model (the CI gate)")
    test.add_argument("model", type=Path, help="model file or Hugging Face directory")
    test.add_argument("paths", nargs="*", type=Path, help="test files or folders (default: [tool.safecompress] tests, else safety_tests/)")
    test.add_argument("--dense", type=Path, help="the dense parent, for requirements relative to it (default: the parent a compressed artifact records, SHA-256 checked)")
    test.add_argument(
        "--absolute-only",
        dest="absolute_only",
        action="store_true",
        help="gate on absolute limits only: requirements relative to the dense parent fall back or skip (without it, a missing parent is an error)",
    )
    add_model_options(test)
    add_session_options(test)
    pm.hook.safecompress_addoption(parser=test, command="test")

    plugins = commands.add_parser("plugins", help="list loaded plugins, fixtures, attacks, remedies, reporters and datasets")
    plugins.add_argument("--rootdir", type=Path)
    pm.hook.safecompress_addoption(parser=plugins, command="plugins")

    for name, (module_name, help_text) in EXTERNAL_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        importlib.import_module(module_name).add_arguments(sub)
        pm.hook.safecompress_addoption(parser=sub, command=name)
    return parser


def cmd_test(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.reporters.terminal import TerminalReporter
    from safecompress.runner.session import wrap_session

    config = config_from_args(args, pm, "test")
    pm.register(TerminalReporter(console, config.verbosity), name="terminalreporter")

    def body(session: Any) -> Optional[int]:
        from safecompress.driver.gate_record import prepare_gate

        session.collect()
        dense, notes = prepare_gate(session, args.model, args.dense, bool(args.absolute_only))
        for note in notes:
            console.print(f"note: {printable(note)}", markup=False, highlight=False)
        model, info = session.load_model(args.model)
        if dense is not None:
            session.dense_model, _ = session.load_model(dense, shaped_like=model)
        session.set_model(model, label=args.model.name, info=info)
        session.run()
        return None

    return wrap_session(config, body, console)


def cmd_plugins(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from rich.table import Table

    from safecompress.plugins import collect_registry
    from safecompress.runner.conftests import ConftestLoader, register_plugin_fixtures
    from safecompress.runner.fixtures import FixtureManager

    config = config_from_args(args, pm, "plugins")
    conftests = ConftestLoader(pm, config.rootdir)
    conftests.load(config.rootdir / "conftest.py")
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    table = Table(title="plugins", title_justify="left")
    for column in ("name", "kind", "version"):
        table.add_column(column)
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda pair: str(pair[0])):
        dist = distributions.get(id(plugin))
        kind = "built-in" if str(name).startswith("builtin:") else ("conftest" if str(name).startswith("conftest:") else "entry point")
        version = f"{dist.project_name} {dist.version}" if dist is not None else (__version__ if kind == "built-in" else "")
        table.add_row(markup_safe(name), kind, markup_safe(version))
    console.print(table)
    fixtures = FixtureManager()
    register_plugin_fixtures(pm, fixtures)
    conftests.parse_fixtures(fixtures)
    console.print(f"fixtures: {', '.join(fixtures.names())}", highlight=False)
    for hook, label in (
        ("safecompress_register_attacks", "attacks"),
        ("safecompress_register_remedies", "remedies"),
        ("safecompress_register_reporters", "reporters"),
        ("safecompress_register_datasets", "datasets"),
        ("safecompress_register_models", "model factories"),
        ("safecompress_register_growth_rules", "growth rules"),
    ):
        names = sorted(collect_registry(pm, hook))
        console.print(f"{label}: {', '.join(names) or '(none)'}", highlight=False)
    return 0


BUILTIN_COMMANDS: dict[str, Callable[[argparse.Namespace, Any, Console], int]] = {"test": cmd_test, "plugins": cmd_plugins}


def main(argv: Optional[Sequence[str]] = None) -> ExitCode:
    """Entry point of the ``safecompress`` console script; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console(soft_wrap=True)
    try:
        from safecompress.plugins import get_plugin_manager

        pm = get_plugin_manager()
        parser = build_parser(pm)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return ExitCode.USAGE_ERROR
        if args.command in BUILTIN_COMMANDS:
            return ExitCode(BUILTIN_COMMANDS[args.command](args, pm, console))
        module = importlib.import_module(EXTERNAL_COMMANDS[args.command][0])
        return ExitCode(module.run(args, pm, console))
    except SafeCompressError as exc:  # UsageError included: bad input, one line, exit 4
        console.print(f"ERROR: {printable(exc)}", markup=False, highlight=False)
        return ExitCode.USAGE_ERROR
    except KeyboardInterrupt:
        console.print("Interrupted", markup=False)
        return ExitCode.INTERRUPTED
