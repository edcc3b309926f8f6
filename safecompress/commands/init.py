"""``safecompress init``: scaffold a SafeCompress project in a folder (step 0 of the README tour)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import whole_number

    parser.add_argument("--arch", help="how a state-dict model is rebuilt: torchvision:NAME or package.module:factory (else a placeholder)")
    parser.add_argument("--num-classes", dest="num_classes", type=whole_number(1), help="classes of the model's output (else a placeholder)")
    parser.add_argument("--data", help="a registered dataset (see `safecompress plugins`); else conftest.py builds DataSplits.from_arrays")
    parser.add_argument("--dir", type=Path, default=Path("."), help="the project folder (default: the current one)")


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.scaffold import ProjectChoices, scaffold_project
    from safecompress.textsafe import markup_safe

    written = scaffold_project(args.dir, ProjectChoices(arch=args.arch, num_classes=args.num_classes, data=args.data))
    root = args.dir.resolve()
    for path in written:
        console.print(f"wrote {markup_safe(str(path.relative_to(root)))}", highlight=False)
    console.print("next: edit the data fixture in conftest.py and [tool.safecompress.recipe], then `safecompress test MODEL` and `safecompress compress MODEL`", markup=False, highlight=False)
    return 0
