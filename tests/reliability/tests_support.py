"""Helpers for the reliability tests."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def run_in(root: Path, *args: str) -> int:
    from safecompress.cli import main

    previous = Path.cwd()
    os.chdir(root)
    try:
        return main(list(args))
    finally:
        os.chdir(previous)


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder``: what 'intact' means."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}
