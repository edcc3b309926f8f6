"""Shared helpers of the attack tests: real Fashion-MNIST splits and a one-thread fixture.

The Fashion-MNIST helper reads the gzip idx files with numpy, normalises with the dataset's mean
and std, and draws disjoint random roles from the 60,000 training images (the official builder
lives elsewhere). Tests skip with a clear reason when the files are absent.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from safecompress.data.splits import DataSplits, Split

ROOT = Path("/usr/share/datasets/fashion-mnist")
IMAGES, LABELS = ROOT / "train-images-idx3-ubyte.gz", ROOT / "train-labels-idx1-ubyte.gz"
MEAN, STD = 0.2860, 0.3530


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=offset)


def fashion_mnist_splits(members: int, non_members: int, population: int, test: int, seed: int = 0) -> DataSplits:
    """Disjoint random roles of the sizes given, images as (n, 1, 28, 28) float32 tensors."""
    if not (IMAGES.exists() and LABELS.exists()):
        pytest.skip(f"Fashion-MNIST idx files not found under {ROOT}")
    images = _read_idx(IMAGES, 16).reshape(-1, 1, 28, 28)
    labels = _read_idx(LABELS, 8).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cuts = np.cumsum([0, members, non_members, population, test])

    def split(lo: int, hi: int) -> Split:
        rows = np.sort(order[lo:hi])
        x = (torch.from_numpy(images[rows].astype(np.float32) / 255.0) - MEAN) / STD
        return Split(x, torch.from_numpy(labels[rows]), rows)

    roles = [split(cuts[i], cuts[i + 1]) for i in range(4)]
    return DataSplits(*roles, num_classes=10, source="fashion-mnist-train", seed=seed)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread for a module, restored after.

    The test machine's two cores are shared with other jobs; two intra-op threads competing with
    them spin and run several times slower than one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
