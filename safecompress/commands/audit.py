"""``safecompress audit MODEL --attack NAME``: one attack, its metrics and intervals.

The standalone use privacy auditors expect: the project's ``data`` fixture says which samples were
members; the ``train_recipe`` fixture says how reference models are trained. Membership attacks
(``inversion`` included) report an AUC; the robustness attacks (``pgd``, ``fgsm``) report robust
accuracy on the test split. Exit 0 unless ``--fail-above`` (an AUC) or ``--fail-below`` (a robust
accuracy) is given and the whole interval lies beyond it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from safecompress.errors import UsageError

ALIASES = {"whitebox": "nasr_whitebox", "nasr-whitebox": "nasr_whitebox"}
ROBUSTNESS_OPTIONS = ("eps", "steps")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import add_model_options, finite_float, seed_number, whole_number

    parser.add_argument("model", type=Path, help="model file or Hugging Face folder")
    parser.add_argument("--attack", default="rmia", help="loss, confidence, entropy, mentr, gap, nasr, nasr-whitebox, lira, rmia, inversion, pgd, fgsm or a plugin's (default rmia)")
    parser.add_argument("--refs", type=whole_number(1), help="reference models for lira/rmia (default 2)")
    parser.add_argument("--online", action="store_true", help="lira/rmia: references trained on halves of all rows (IN and OUT models)")
    parser.add_argument("--json", dest="results_json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--scores", action="store_true", help="with --json: add every evaluation row's score, membership, split and source index (for an outside re-analysis)")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write a log-scale ROC and a score histogram (PNG; needs matplotlib)")
    parser.add_argument("--fail-above", dest="fail_above", type=finite_float, metavar="AUC", help="exit 1 when the AUC interval lies wholly above AUC")
    parser.add_argument("--fail-below", dest="fail_below", type=finite_float, metavar="ACC", help="pgd/fgsm: exit 1 when the robust-accuracy interval lies wholly below ACC")
    parser.add_argument("--eps", type=finite_float, help="pgd/fgsm: L∞ radius in input units (pixels in [0, 1] for images; default 0.1)")
    parser.add_argument("--steps", type=whole_number(1), help="pgd: attack steps (default 10)")
    parser.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seed", type=seed_number, help="seed (default 0)")
    parser.add_argument("--rootdir", type=Path, help="project root")
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_model_options(parser)


def check_outputs(args: argparse.Namespace) -> None:
    """The --json file and the --plot folder must be writable (and matplotlib present) before the
    attack trains its reference models, not after."""
    from safecompress.fsutil import require_writable_dir, require_writable_file

    if args.scores and not args.results_json:
        raise UsageError("--scores adds per-row scores to the --json file: give --json FILE too")
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


def evaluation_rows(data: Any, results: Any, seed: int) -> Optional[dict[str, Any]]:
    """Which data row each score belongs to (``attack_rows``: the evaluation members, then the
    evaluation non-members), the calibration rows, and how the inputs were built; None when the
    attack scored other rows (nothing to map)."""
    from safecompress.attacks.data_structures import attack_rows

    rows = attack_rows(data, seed)
    evaluation = rows["evaluation"]
    if len(evaluation["members"]) + len(evaluation["non_members"]) != len(results.scores):
        return None
    return {
        **{k: v for k, v in rows.items() if k not in ("evaluation", "calibration")},
        "split": ["members"] * len(evaluation["members"]) + ["non_members"] * len(evaluation["non_members"]),
        "index": evaluation["members"] + evaluation["non_members"],
        "calibration": rows["calibration"],
    }


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.config import config_from_args
    from safecompress.runner.session import wrap_session

    args.paths = None
    config = config_from_args(args, pm, "audit")
    name = ALIASES.get(args.attack, args.attack)

    def body(session: Any) -> Optional[int]:
        from safecompress.attacks import AttackResults, run_attack
        from safecompress.attacks.registry import AttackSpec
        from safecompress.fsutil import atomic_write_text, json_safe
        from safecompress.plugins import collect_registry

        registry = collect_registry(session.pm, "safecompress_register_attacks")
        if name not in registry:
            raise UsageError(f"unknown attack {args.attack!r}; known: {', '.join(sorted(registry))}")
        spec = registry[name]
        robustness = isinstance(spec, AttackSpec) and spec.kind == "robustness"
        options = {key: getattr(args, key) for key in ROBUSTNESS_OPTIONS if getattr(args, key) is not None}
        if options and not robustness:
            raise UsageError(f"--{' --'.join(options)} apply to robustness attacks (pgd, fgsm), not to {name}")
        if name == "fgsm" and "steps" in options:
            raise UsageError("fgsm is one step by definition; --steps applies to pgd")
        queries_model = isinstance(spec, AttackSpec) and spec.queries_model
        if robustness and (args.plot or args.fail_above is not None):
            raise UsageError(f"{name} measures robust accuracy, not an AUC: use --fail-below instead of --fail-above; --plot draws ROC curves of membership attacks")
        if args.fail_below is not None and not robustness:
            raise UsageError("--fail-below applies to robustness attacks (pgd, fgsm: a robust accuracy); membership attacks use --fail-above")
        if queries_model and (args.refs is not None or args.online):
            raise UsageError(f"{name} trains no reference models: --refs and --online do not apply")
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
            **options,
        )
        console.print(results.summary(), highlight=False, markup=False)
        if args.results_json:
            written = results.to_dict(include_scores=True) if args.scores and isinstance(results, AttackResults) else results.to_dict()
            if args.scores and isinstance(results, AttackResults):
                written["rows"] = evaluation_rows(data, results, int(config.getoption("seed", 0)))
            atomic_write_text(args.results_json, json.dumps(json_safe(written), indent=2, default=str) + "\n")
        if not isinstance(results, AttackResults):
            if args.fail_below is not None and results.robust_accuracy.high < args.fail_below:
                console.print(f"FAILED: {name} robust accuracy {results.robust_accuracy} lies wholly below {args.fail_below}", highlight=False, markup=False)
                return 1
            return 0
        if args.plot:
            from safecompress.plots import plot_roc, plot_score_histogram

            plot_roc(results, args.plot / f"{name}_roc.png")
            plot_score_histogram(results, args.plot / f"{name}_scores.png")
        if args.fail_above is not None and results.auc.low > args.fail_above:
            console.print(f"FAILED: {name} AUC {results.auc} lies wholly above {args.fail_above}", highlight=False, markup=False)
            return 1
        return 0

    return wrap_session(config, body, console)
