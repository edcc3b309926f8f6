"""Rebuild ``fashion_mnist_subset.npz``, the Fashion-MNIST subset shipped inside SafeCompress.

Why a subset in the repository: the demo and the test suite must run on a fresh checkout with no
network and no ``apt``. Its 12,000 28×28 uint8 images take 4.6 MB (LZMA inside the ``.npz``).

How it was drawn (``python -m safecompress.data.embedded.make_subset``, reads the Debian package
``dataset-fashion-mnist`` from ``/usr/share/datasets/fashion-mnist``):

- ``numpy.random.default_rng(SEED)`` with ``SEED = 0``;
- train: for each class 0..9 in order, ``rng.choice`` of 1,000 of that class's 6,000 images in
  ``train-images-idx3-ubyte.gz``, without replacement (10,000 images, class-balanced);
- test: then, for each class in order, 200 of that class's 1,000 images in
  ``t10k-images-idx3-ubyte.gz`` (2,000 images, class-balanced);
- within each part the rows are sorted by original index, and each row keeps it: train image ``i``
  has index ``i``, test image ``i`` has index ``60000 + i``, so a report can name every sample.

The archive stores ``train_images``/``test_images`` (N×28×28 uint8), ``*_labels`` (uint8),
``*_indices`` (int64), ``seed`` and ``source_sha256`` (the SHA-256 of the four source files, in the
order of ``FILES``). Running the script again rewrites an identical archive (checked by a test).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from safecompress.data.images import FASHION_MNIST_DEBIAN_ROOT, FASHION_MNIST_FILES, FASHION_MNIST_TEST_OFFSET, read_idx

SEED = 0
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
FILES = tuple(FASHION_MNIST_FILES.values())  # train images, train labels, test images, test labels
OUTPUT = Path(__file__).with_name("fashion_mnist_subset.npz")


def draw_balanced(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` positions of each class, drawn without replacement, sorted."""
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def build(root: Path = FASHION_MNIST_DEBIAN_ROOT, seed: int = SEED) -> dict[str, np.ndarray]:
    """The arrays of the subset, drawn from the Debian files under ``root``."""
    train_x, train_y, test_x, test_y = (read_idx(root / name) for name in FILES)
    rng = np.random.default_rng(seed)
    train_pos = draw_balanced(train_y, TRAIN_PER_CLASS, rng)
    test_pos = draw_balanced(test_y, TEST_PER_CLASS, rng)
    digests = [hashlib.sha256((root / name).read_bytes()).hexdigest() for name in FILES]
    return {
        "train_images": train_x[train_pos],
        "train_labels": train_y[train_pos],
        "train_indices": train_pos.astype(np.int64),
        "test_images": test_x[test_pos],
        "test_labels": test_y[test_pos],
        "test_indices": (test_pos + FASHION_MNIST_TEST_OFFSET).astype(np.int64),
        "seed": np.array(seed, dtype=np.int64),
        "source_sha256": np.array(digests),
    }


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """An ``.npz`` that ``numpy.load`` reads, LZMA-compressed and byte-for-byte reproducible.

    ``numpy.savez_compressed`` uses deflate (5.3 MB here) and stamps the current time into the zip
    entries; LZMA with a fixed timestamp gives 4.6 MB and the same bytes on every run.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_LZMA
            archive.writestr(info, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=FASHION_MNIST_DEBIAN_ROOT, help="folder holding the four .gz files")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    write_npz(build(args.root), args.output)


if __name__ == "__main__":
    main()
