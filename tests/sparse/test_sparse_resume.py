"""Interrupted and resumed training continues bit-identically (second half in a fresh process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("sparse_resume_worker.py")


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def test_resume_is_bit_identical(tmp_path):
    for mode in ("straight", "resume"):
        subprocess.run([sys.executable, str(WORKER), mode, str(tmp_path)], check=True, timeout=120)
    for growth in ("random", "gradient", "momentum", "unfired"):
        straight = torch.load(tmp_path / f"{growth}-straight.pt", weights_only=True)
        resumed = torch.load(tmp_path / f"{growth}-resumed.pt", weights_only=True)
        assert straight["updates"] == resumed["updates"] == 5
        assert straight["explored"] == resumed["explored"]
        for name, mask in straight["masks"].items():
            assert torch.equal(mask, resumed["masks"][name]), f"{growth}: mask {name} differs"
        for key, value in straight["model"].items():
            assert torch.equal(bits(value), bits(resumed["model"][key])), f"{growth}: {key} differs"
