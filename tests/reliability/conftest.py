"""A finished tiny compression run, shared by the output-folder and resume tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "driver"))
from compress_project import QUICK, gate_verdict, make_compress_project, run_in  # noqa: E402


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ``out/`` holds a complete compress run; tests must not modify it."""
    root = tmp_path_factory.mktemp("finished")
    make_compress_project(root)
    assert run_in(root, "compress", "parent.pt", "--out", "out", *QUICK) == gate_verdict(root / "out")
    return root
