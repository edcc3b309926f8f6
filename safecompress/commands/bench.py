"""``safecompress bench WHAT``: benchmarks that measure speed and memory (never asserted in tests).

``sparse``   dense vs masked training throughput, topology-update cost, artifact sizes;
``attacks``  RMIA scoring cost (sorted vs pairwise) for 10,000 targets × 10,000 population samples.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from safecompress.fsutil import atomic_write_text, json_safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("sparse", "attacks"), help="which benchmark")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw results as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the README table as Markdown")
    parser.add_argument("--quick", action="store_true", help="a shorter run (about a minute)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the median is reported")


def render_attacks(results: dict[str, Any]) -> str:
    lines = ["| measurement | seconds |", "|---|---|"]
    lines += [f"| {key} | {value:.4f} |" for key, value in results.items() if isinstance(value, float)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.inference import resolve_device

    device = str(resolve_device(args.device))
    if args.what == "sparse":
        from safecompress.bench.sparse import render_markdown, run_sparse_benchmark

        results = run_sparse_benchmark(device=device, repeats=args.repeats, quick=args.quick)
        markdown = render_markdown(results)
    else:
        from safecompress.attacks.bench import run_attack_benchmark

        results = run_attack_benchmark(repeats=max(1, min(args.repeats, 3)))
        markdown = render_attacks(results)
    console.print(Markdown(markdown))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(results), indent=2, default=str) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, markdown)
    return 0
