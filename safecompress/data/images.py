"""Image datasets: Fashion-MNIST (the embedded subset or the full Debian copy) and scikit-learn digits.

Inputs are float32 tensors of shape N×1×H×W, normalised with the dataset's mean and standard deviation
(the same transform for every role, METHOD.md §4); labels are int64. Torch is imported inside the
builders so that ``import safecompress.data`` stays light.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from safecompress.data.sampling import check_sizes, draw_roles
from safecompress.data.splits import DataSplits, Split
from safecompress.errors import UsageError

FASHION_MNIST_DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Mean and standard deviation of the 60,000 training images scaled to [0, 1].
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
# Test image i of Fashion-MNIST is sample 60000 + i, so one integer names any sample of the dataset.
FASHION_MNIST_TEST_OFFSET = 60000
FASHION_MNIST_INDEXING = "training image i has index i; test image i has index 60000 + i"
EMBEDDED_SUBSET = Path(__file__).with_name("embedded") / "fashion_mnist_subset.npz"
# Mean and standard deviation of all 1,797 digits scaled to [0, 1] (pixel values are 0..16).
DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (the MNIST format: magic, big-endian dimensions, uint8 data) as an array."""
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise UsageError(f"{path} is not a uint8 IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UsageError(f"{path} is truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UsageError(f"{path}: the header says {dims} but the file holds {data.size} values")
    return data.reshape(dims)


@lru_cache(maxsize=1)
def embedded_fashion_mnist() -> dict[str, np.ndarray]:
    """The arrays of the subset shipped in the package (read-only, read once per process)."""
    with np.load(EMBEDDED_SUBSET, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def _image_split(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, scale: float, mean: float, std: float) -> Split:
    """A split of N×1×H×W float32 images normalised as ``(pixel / scale - mean) / std``."""
    import torch

    inputs = torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(scale).sub_(mean).div_(std).unsqueeze(1)
    return Split(inputs, torch.from_numpy(np.asarray(labels, dtype=np.int64)), indices)


def _fashion_splits(
    name: str,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    sizes: dict[str, int],
    seed: int,
) -> DataSplits:
    """Roles drawn from (images, labels, source indices) of the training and test parts."""
    positions = draw_roles(name, sizes, train[1], seed, test_labels=test[1])
    splits = {}
    for role, pos in positions.items():
        images, labels, indices = test if role == "test" else train
        splits[role] = _image_split(images[pos], labels[pos], indices[pos], 255.0, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    return DataSplits(
        **splits,
        num_classes=10,
        source="fashion-mnist",
        seed=seed,
        extra={
            "builder": name,
            "class_names": list(FASHION_MNIST_CLASSES),
            "input_shape": (1, 28, 28),
            "normalization": {"mean": FASHION_MNIST_MEAN, "std": FASHION_MNIST_STD},
            "indexing": FASHION_MNIST_INDEXING,
        },
    )


def fashion_mnist_embedded(members: int = 1000, non_members: int = 1000, population: int = 4000, test: int = 2000, seed: int = 0) -> DataSplits:
    """Fashion-MNIST from the subset shipped in the package: works offline, on a fresh checkout.

    The subset holds 10,000 training images (1,000 per class) and 2,000 test images (200 per class),
    drawn once by ``safecompress/data/embedded/make_subset.py``; indices are the original ones.
    """
    sizes = check_sizes("fashion-mnist-embedded", members, non_members, population, test)
    arrays = embedded_fashion_mnist()
    train = (arrays["train_images"], arrays["train_labels"], arrays["train_indices"])
    test_part = (arrays["test_images"], arrays["test_labels"], arrays["test_indices"])
    try:
        return _fashion_splits("fashion-mnist-embedded", train, test_part, sizes, seed)
    except UsageError as exc:
        raise UsageError(f"{exc} (the full dataset is the 'fashion-mnist' builder)") from None


def fashion_mnist_full(
    members: int = 10000,
    non_members: int = 10000,
    population: int = 20000,
    test: int = 10000,
    seed: int = 0,
    root: str | Path = FASHION_MNIST_DEBIAN_ROOT,
) -> DataSplits:
    """All of Fashion-MNIST (60,000 training and 10,000 test images) from the Debian package files."""
    sizes = check_sizes("fashion-mnist", members, non_members, population, test)
    root = Path(root)
    missing = [name for name in FASHION_MNIST_FILES.values() if not (root / name).is_file()]
    if missing:
        raise UsageError(
            f"Fashion-MNIST not found: {root / missing[0]} is missing; install the Debian package "
            "dataset-fashion-mnist (apt-get install dataset-fashion-mnist), pass root=..., "
            "or use the embedded subset (data = fashion-mnist-embedded)"
        )
    arrays = {key: read_idx(root / name) for key, name in FASHION_MNIST_FILES.items()}
    train = (arrays["train_images"], arrays["train_labels"], np.arange(len(arrays["train_labels"]), dtype=np.int64))
    test_indices = FASHION_MNIST_TEST_OFFSET + np.arange(len(arrays["test_labels"]), dtype=np.int64)
    return _fashion_splits("fashion-mnist", train, (arrays["test_images"], arrays["test_labels"], test_indices), sizes, seed)


def digits(members: int = 400, non_members: int = 400, population: int = 600, test: int = 390, seed: int = 0) -> DataSplits:
    """scikit-learn's bundled handwritten digits (1,797 images of 8×8, 10 classes): tiny and fast.

    There is no separate test set, so all four roles come from the 1,797 images; index i is
    ``load_digits()`` row i.
    """
    sizes = check_sizes("digits", members, non_members, population, test)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the digits dataset needs scikit-learn: pip install scikit-learn (or safecompress[dev])") from None
    bunch = load_digits()
    images, labels = bunch.images, bunch.target
    indices = np.arange(len(labels), dtype=np.int64)
    positions = draw_roles("digits", sizes, labels, seed)
    splits = {role: _image_split(images[pos], labels[pos], indices[pos], 16.0, DIGITS_MEAN, DIGITS_STD) for role, pos in positions.items()}
    return DataSplits(
        **splits,
        num_classes=10,
        source="sklearn-digits",
        seed=seed,
        extra={
            "builder": "digits",
            "class_names": [str(d) for d in range(10)],
            "input_shape": (1, 8, 8),
            "normalization": {"mean": DIGITS_MEAN, "std": DIGITS_STD},
            "indexing": "index i is row i of sklearn.datasets.load_digits()",
        },
    )
