"""Shared pytest fixtures: throw-away safecompress projects run through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

# Under pytest-xdist (``-n auto`` in pyproject.toml) the workers share the cores: one worker per core
# at one torch thread each. Two threads per worker on a 2-core machine oversubscribe it (measured
# 4-13x slower); subprocesses the tests start inherit the same limit.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    import torch

    _THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
    torch.set_num_threads(_THREADS)

LINEAR_CONFTEST = """
import safecompress
import torch


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torch.nn.Linear(4, 2)
"""


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

    def pytest(self, *args: str, timeout: int = 300) -> "subprocess.CompletedProcess[str]":
        """``python -m pytest ARGS`` in the project (the bridge runs there), no plugin autoload."""
        env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        return subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def cli(self, *args: str, timeout: int = 300) -> "subprocess.CompletedProcess[str]":
        """``python -m safecompress ARGS`` in a fresh process: for inputs that could hang or kill one."""
        env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "safecompress", *args]
        return subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout, check=False)


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


BARE_SAFETY_TEST = """
def test_model_loaded(model, record):
    record.metric("parameters", sum(p.numel() for p in model.parameters()))
"""


@pytest.fixture
def bare_project(make_project: Callable[[str], Project]) -> Project:
    """A project with no model_factory fixture: whatever a model file names is all there is to go on."""
    project = make_project("bare")
    project.write("pyproject.toml", '[tool.safecompress]\ntests = ["safety_tests"]\ndata = "fashion-mnist-embedded"\n')
    project.write("safety_tests/test_loaded.py", BARE_SAFETY_TEST)
    return project


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture
def one_line_error() -> Callable[[str], str]:
    """The output's ERROR line; asserts there is exactly one and no traceback."""
    return _one_line_error


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that exists only if a payload ran."""
    return tmp_path / "PAYLOAD_RAN"
