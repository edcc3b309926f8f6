"""``safecompress bench WHAT``: benchmarks (never asserted in tests).

``sparse``    dense vs masked training throughput, topology-update cost, artifact sizes;
``attacks``   RMIA scoring cost (sorted vs pairwise) for 10,000 targets × 10,000 population samples;
``compress``  SafeCompress vs dense, one-shot pruning and plain DST on privacy and accuracy
              (METHOD.md §8; see docs/benchmark.md);
``heterogeneous``  adversarial regularisation against a black-box, a white-box or both attackers
              (BMIA / WMIA / MMIA), gated by RMIA/LiRA and the learned Nasr attacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from safecompress.errors import UsageError
from safecompress.fsutil import atomic_write_text, json_safe


def _training_modes(text: str) -> tuple:
    from safecompress.bench.sparse import TrainingMode

    try:
        return tuple(TrainingMode.parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _arms(text: str) -> tuple[str, ...]:
    """``--arms a,b``: the arms named, each an arm of the plan."""
    from safecompress.bench.plan import known_arms

    try:
        return known_arms([a.strip() for a in text.split(",") if a.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import whole_number

    parser.add_argument("what", choices=("sparse", "attacks", "compress", "heterogeneous"), help="which benchmark")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw results as JSON (compress: rewritten after every run)")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the README table as Markdown")
    parser.add_argument("--frontier", type=Path, metavar="FILE.svg", help="compress: draw the privacy–utility frontier as SVG (and as PNG beside it when matplotlib is installed)")
    parser.add_argument("--quick", action="store_true", help="a shorter run (sparse, attacks: about a minute; compress: under 10 minutes on 2 CPU cores)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--modes", type=_training_modes, default=None, metavar="LIST", help="sparse: training modes to time, comma-separated from fp32, bf16, compile, bf16+compile (default fp32)")
    parser.add_argument("--repeats", type=whole_number(1), default=5, help="runs per measurement; the median is reported")
    parser.add_argument("--seeds", type=seed_list, metavar="N|LIST", help="compress, heterogeneous: number of seeds (3 → 0,1,2) or a comma-separated list (default 3; --quick 1)")
    parser.add_argument("--claim-only", dest="claim_only", action="store_true", help="compress: only what the claim needs (Fashion-MNIST at d = 0.1, plain DST at the next density down, no text task)")
    parser.add_argument("--gate-checkpoints", dest="gate_checkpoints", action="store_true", help="compress: run the requirements at every judged checkpoint of SafeCompress arms (in-loop vs gate)")
    parser.add_argument("--arms", type=_arms, metavar="LIST", help="compress: only these arms, comma-separated (dense always runs; default: every arm of the plan)")
    parser.add_argument("--threads", type=whole_number(1), help="torch CPU threads (default: torch's choice); recorded in the results")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON", help="compress, heterogeneous: pool the --json results of runs over disjoint seeds (no training)")


def render_attacks(results: dict[str, Any]) -> str:
    lines = ["| measurement | seconds |", "|---|---|"]
    lines += [f"| {key} | {value:.4f} |" for key, value in results.items() if isinstance(value, float)]
    return "\n".join(lines) + "\n"


def seed_list(text: str) -> tuple[int, ...]:
    """An argparse type for ``--seeds``: a count (3 → 0, 1, 2) or a list of distinct seeds."""
    from safecompress.bench.compress import parse_seeds
    from safecompress.config import MAX_SEED

    try:
        seeds = parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("invalid literal for int() with base 10: ") or f"{text!r} is not a seed list") from None
    if not seeds or any(not 0 <= seed <= MAX_SEED for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are distinct whole numbers from 0 to {MAX_SEED}")
    return seeds


def _no_constant(name: str) -> Any:
    raise ValueError(f"it holds {name}")


def read_results(path: Path) -> dict[str, Any]:
    """A benchmark's --json results; NaN or Infinity in them is refused (JSON has neither, and a NaN
    would pool into every mean)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except FileNotFoundError:
        raise UsageError(f"--merge: {path} does not exist") from None
    except json.JSONDecodeError:
        raise UsageError(f"--merge: {path} is not a benchmark JSON file (JSONDecodeError)") from None
    except ValueError as exc:  # NaN, Infinity; UnicodeDecodeError
        raise UsageError(f"--merge: {path} is not a benchmark JSON file ({exc if 'it holds' in str(exc) else type(exc).__name__})") from None
    except OSError as exc:
        raise UsageError(f"--merge: {path} is not a benchmark JSON file ({type(exc).__name__})") from None


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.fsutil import require_writable_file
    from safecompress.inference import resolve_device

    frontier = getattr(args, "frontier", None)
    for option, path in (("--json", args.json), ("--markdown", args.markdown), ("--frontier", frontier)):
        if path is not None:  # a benchmark runs for up to an hour: find a bad target now
            require_writable_file(path, option)

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    if args.what == "sparse":
        from safecompress.bench.sparse import render_markdown, run_sparse_benchmark

        results = run_sparse_benchmark(device=device, repeats=args.repeats, quick=args.quick, modes=getattr(args, "modes", None))
        markdown = render_markdown(results)
    elif args.what == "compress" and getattr(args, "merge", None):
        from safecompress.bench import compress as bench
        from safecompress.bench import results as bench_results

        results = bench.merge_results([read_results(path) for path in args.merge])
        command = " + ".join(str(part["command"]) for part in results["merged_from"])
        results["command"] = command
        markdown = bench_results.render_markdown(results, command)
    elif args.what == "compress":
        from safecompress.bench import compress as bench
        from safecompress.bench import plan as bench_plan
        from safecompress.bench import results as bench_results

        seeds = getattr(args, "seeds", None)
        plan = bench_plan.make_plan(quick=args.quick, seeds=seeds, claim_only=bool(getattr(args, "claim_only", False)), arms=getattr(args, "arms", None))
        plan = dataclasses.replace(plan, gate_checkpoints=bool(getattr(args, "gate_checkpoints", False)))
        command = "safecompress " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "safecompress bench compress" + (" --quick" if args.quick else "")

        def checkpoint(partial: dict[str, Any]) -> None:
            if args.json:
                atomic_write_text(args.json, json.dumps(json_safe(partial), indent=2, default=str) + "\n")

        def log(line: str) -> None:
            console.print(line, highlight=False, markup=False)
            console.file.flush()  # a long run shows its progress in a log file too

        results = bench.run_compress_benchmark(plan, device=device, log=log, checkpoint=checkpoint)
        results["command"] = command
        markdown = bench_results.render_markdown(results, command)
    elif args.what == "heterogeneous" and getattr(args, "merge", None):
        from safecompress.bench import heterogeneous

        results = heterogeneous.merge_results([read_results(path) for path in args.merge])
        markdown = heterogeneous.render_markdown(results)
    elif args.what == "heterogeneous":
        from safecompress.bench import compress as bench
        from safecompress.bench import heterogeneous

        def save(partial: dict[str, Any]) -> None:
            if args.json:
                atomic_write_text(args.json, json.dumps(json_safe(partial), indent=2, default=str) + "\n")

        seeds = getattr(args, "seeds", None) or ((0,) if args.quick else (0, 1, 2))
        results = heterogeneous.run_heterogeneous_benchmark(seeds, quick=args.quick, device=device, log=lambda line: console.print(line, highlight=False, markup=False), checkpoint=save)
        results["command"] = "safecompress " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "safecompress bench heterogeneous"
        markdown = heterogeneous.render_markdown(results)
    else:
        from safecompress.attacks.bench import run_attack_benchmark

        results = run_attack_benchmark(repeats=max(1, min(args.repeats, 3)))
        markdown = render_attacks(results)
    console.print(Markdown(markdown))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(results), indent=2, default=str) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, markdown)
    if frontier is not None and args.what == "compress" and results.get("frontier"):
        draw_frontier(results, frontier, console)
    return 0


def draw_frontier(results: dict[str, Any], path: Path, console: Console) -> None:
    """The SVG always; the PNG beside it when matplotlib is there (else one line saying so)."""
    from safecompress.bench.frontier import frontier_svg, plot_frontier_png

    points = results["frontier"]["points"]
    atomic_write_text(path, frontier_svg(points))
    try:
        plot_frontier_png(points, path.with_suffix(".png"))
    except ImportError as error:
        console.print(f"frontier PNG skipped: {error}", highlight=False, markup=False)
