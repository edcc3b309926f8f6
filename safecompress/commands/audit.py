"""``safecompress audit MODEL --attack NAME``: one membership attack, its metrics and intervals.

The standalone use privacy auditors expect: the project's ``data`` fixture says which samples were
members; the ``train_recipe`` fixture says how reference models are trained. Exit 0 unless
``--fail-above`` is given and the whole AUC interval lies above it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from safecompress.errors import UsageError

ALIASES = {"whitebox": "nasr_whitebox"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import add_model_options, finite_float, whole_number

    parser.add_argument("model", type=Path, help="model file or Hugging Face folder")
    parser.add_argument("--attack", default="rmia", help="loss, confidence, entropy, mentr, gap, nasr, whitebox, lira, rmia or a plugin's (default rmia)")
    parser.add_argument("--refs", type=whole_number(1), help="reference models for lira/rmia (default 2)")
    parser.add_argument("--online", action="store_true", help="lira/rmia: references trained on halves of all rows (IN and OUT models)")
    parser.add_argument("--json", dest="results_json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write a log-scale ROC and a score histogram (PNG; needs matplotlib)")
    parser.add_argument("--fail-above", dest="fail_above", type=finite_float, metavar="AUC", help="exit 1 when the AUC interval lies wholly above AUC")
    parser.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seed", type=whole_number(0), help="seed (default 0)")
    parser.add_argument("--rootdir", type=Path, help="project root")
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_model_options(parser)


def check_outputs(args: argparse.Namespace) -> None:
    """The --json file and the --plot folder must be writable (and matplotlib present) before the
    attack trains its reference models, not after."""
    from safecompress.fsutil import require_writable_dir, require_writable_file

    if args.results_json:
        require_writable_file(args.results_json, "--json")
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - only its presence is checked here
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'safecompress[plots]'") from None
        if args.plot.exists() and not args.plot.is_dir():
            raise UsageError(f"--plot {args.plot} is a file; it names the folder the plots go to")
        require_writable_dir(args.plot, "--plot")


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.config import config_from_args
    from safecompress.runner.session import wrap_session

    args.paths = None
    config = config_from_args(args, pm, "audit")
    name = ALIASES.get(args.attack, args.attack)

    def body(session: Any) -> Optional[int]:
        from safecompress.attacks import run_attack
        from safecompress.fsutil import atomic_write_text, json_safe
        from safecompress.plugins import collect_registry

        registry = collect_registry(session.pm, "safecompress_register_attacks")
        if name not in registry:
            raise UsageError(f"unknown attack {args.attack!r}; known: {', '.join(sorted(registry))}")
        check_outputs(args)
        model, _ = session.load_model(args.model)
        session.collect()  # conftests beside the tests may define the data fixture
        data = session.fixture_value("data")
        recipe = session.train_recipe()
        results = run_attack(
            name,
            model,
            data,
            device=session.device,
            refs=args.refs,
            online=args.online,
            recipe=recipe,
            seed=int(config.getoption("seed", 0)),
            registry=registry,
        )
        console.print(results.summary(), highlight=False, markup=False)
        if args.results_json:
            atomic_write_text(args.results_json, json.dumps(json_safe(results.to_dict()), indent=2, default=str) + "\n")
        if args.plot:
            from safecompress.plots import plot_roc, plot_score_histogram

            plot_roc(results, args.plot / f"{name}_roc.png")
            plot_score_histogram(results, args.plot / f"{name}_scores.png")
        if args.fail_above is not None and results.auc.low > args.fail_above:
            console.print(f"FAILED: {name} AUC {results.auc} lies wholly above {args.fail_above}", highlight=False, markup=False)
            return 1
        return 0

    return wrap_session(config, body, console)
