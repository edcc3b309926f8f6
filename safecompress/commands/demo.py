"""``safecompress demo``: the whole product in one command on the embedded Fashion-MNIST subset.

Trains a small dense CNN on the members, compresses it to d = 0.1 with the project's safety tests
(``safety_tests/``, in a clone of the repository) or, anywhere else, with the library's shipped
suite and the demo's settings (``safecompress/suite/``), and prints the dense-vs-compressed table.
It exits 0 once it has run, whatever the gate said (the table says it); ``safecompress compress``
is the command that exits with the gate's code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from safecompress.errors import UsageError
from safecompress.suite import suite_folder

DEMO_ARCH = "safecompress.models:small_cnn"
DENSE_PARENT = "dense_parent.pt"


def demo_project() -> dict[str, Any]:
    """The demo's ``[tool.safecompress]`` settings, shipped beside the library suite; its tests are the suite's folder."""
    import tomllib

    from safecompress.config import validate_section

    path = suite_folder() / "demo_project.toml"
    section = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["safecompress"]
    validate_section(section, path)
    return {**section, "tests": ["."]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from safecompress.cli import finite_float, seed_number, whole_number

    parser.add_argument("--out", type=Path, default=Path("safecompress-demo"), help="output folder (default safecompress-demo)")
    parser.add_argument("--overwrite", action="store_true", default=None, help="replace an earlier demo's outputs in --out (refused otherwise)")
    parser.add_argument("--density", type=finite_float, default=0.1)
    parser.add_argument("--epochs", type=whole_number(1), help="epochs for the dense model and for compression (default: the recipe's)")
    parser.add_argument("--seed", type=seed_number, default=0)
    parser.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--rootdir", type=Path, help="project root (default: nearest pyproject.toml with [tool.safecompress])")
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("-v", "--verbose", action="count", default=0)


def run(args: argparse.Namespace, pm: Any, console: Console) -> int:
    from safecompress.commands.compress import compress, settings_from
    from safecompress.config import Config, config_from_args
    from safecompress.runner.session import wrap_session

    args.arch = DEMO_ARCH  # the parent it trains is saved as a SmallCNN state dict; options it lacks read as unset
    config = config_from_args(args, pm, "demo")
    if not (config.rootdir / "safety_tests").is_dir():
        if args.rootdir is not None:
            raise UsageError(f"no safety_tests/ under --rootdir {config.rootdir}: give a project with safety tests, or leave --rootdir out to run the library's suite")
        config = Config(args, demo_project(), suite_folder(), pm, "demo")
        console.print(f"no safety_tests/ here: running the library's shipped suite ({config.rootdir}) with the demo's settings", highlight=False)
    settings = settings_from(args, config)

    def body(session: Any) -> int:
        from safecompress.driver.outputs import OutputLock

        with OutputLock(settings.out) as lock:  # the parent is written into --out before compress starts
            return run_demo(session, lock)

    def run_demo(session: Any, lock: Any) -> int:
        from safecompress.driver.outputs import RUN_OUTPUTS, prepare_output_folder
        from safecompress.modelio import save_model
        from safecompress.models import small_cnn
        from safecompress.training import fit

        prepare_output_folder(settings.out, resume=False, overwrite=settings.overwrite, names=(*RUN_OUTPUTS, DENSE_PARENT), resumable=False)
        session.collect()
        data = session.fixture_value("data")
        recipe = session.train_recipe()
        if args.epochs:
            from dataclasses import replace

            recipe = replace(recipe, epochs=args.epochs)
        config.option.num_classes = data.num_classes
        started = time.perf_counter()
        console.print(f"training the dense parent: SmallCNN on {len(data.members)} Fashion-MNIST members, {recipe.epochs} epochs", highlight=False)
        import torch

        torch.manual_seed(args.seed)
        dense = fit(small_cnn(data.num_classes), data.members, recipe, seed=args.seed, device=session.device)
        parent_path = save_model(dense.cpu(), settings.out / DENSE_PARENT)
        console.print(f"dense parent trained in {time.perf_counter() - started:.1f}s → {parent_path}", highlight=False)
        status = compress(session, parent_path, settings, console, bool(args.quiet), DEMO_ARCH, {"num_classes": data.num_classes}, output_lock=lock)
        verdict = "passed" if status == 0 else "did not pass (see the table: the red tests say which limit the model missed)"
        console.print(f"demo finished in {time.perf_counter() - started:.1f}s; the compressed model's gate {verdict}", highlight=False)
        return 0  # the demo ran; `safecompress compress` is the command whose exit code is the gate's

    return wrap_session(config, body, console)
