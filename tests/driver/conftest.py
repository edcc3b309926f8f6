"""Fixtures for the driver's end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from compress_project import make_compress_project


@pytest.fixture(scope="module")
def compress_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compress")
    make_compress_project(root)
    return root
