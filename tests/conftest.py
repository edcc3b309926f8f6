"""Shared pytest fixtures: throw-away safecompress projects run through the real CLI."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Callable

import pytest

LINEAR_CONFTEST = '''
import safecompress
import torch


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torch.nn.Linear(4, 2)
'''


class Project:
    """A folder with pyproject.toml, conftest.py and safety_tests/, plus a saved tiny model."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def save_linear(self, name: str = "model.pt") -> Path:
        import torch

        torch.manual_seed(0)
        path = self.root / name
        torch.save(torch.nn.Linear(4, 2).state_dict(), path)
        return path

    def run(self, *args: str) -> int:
        from safecompress.cli import main

        previous = Path.cwd()
        os.chdir(self.root)
        try:
            return main(list(args))
        finally:
            os.chdir(previous)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path)
    proj.write("pyproject.toml", '[tool.safecompress]\ntests = ["safety_tests"]\n\n[tool.safecompress.thresholds]\nauc_max = 0.55\n')
    proj.write("conftest.py", LINEAR_CONFTEST)
    proj.save_linear()
    return proj


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], Project]:
    def make(name: str) -> Project:
        root = tmp_path / name
        root.mkdir()
        return Project(root)

    return make
