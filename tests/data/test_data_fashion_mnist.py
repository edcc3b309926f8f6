"""Fashion-MNIST: the embedded subset (always available) and the full Debian copy (when installed)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from safecompress.data import DataSplits, fashion_mnist_embedded, fashion_mnist_full
from safecompress.data.embedded import make_subset
from safecompress.data.images import EMBEDDED_SUBSET, FASHION_MNIST_DEBIAN_ROOT, FASHION_MNIST_FILES, embedded_fashion_mnist
from safecompress.errors import UsageError

needs_debian = pytest.mark.skipif(
    not all((FASHION_MNIST_DEBIAN_ROOT / name).is_file() for name in FASHION_MNIST_FILES.values()),
    reason="Debian package dataset-fashion-mnist not installed",
)
ROLES = ("members", "non_members", "population", "test")


@pytest.fixture(scope="module")
def default_splits() -> DataSplits:
    return fashion_mnist_embedded()


def test_embedded_subset_contents():
    arrays = embedded_fashion_mnist()
    assert arrays["train_images"].shape == (10000, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert arrays["test_images"].shape == (2000, 28, 28) and arrays["test_images"].dtype == np.uint8
    assert np.bincount(arrays["train_labels"]).tolist() == [1000] * 10
    assert np.bincount(arrays["test_labels"]).tolist() == [200] * 10
    train, test = arrays["train_indices"], arrays["test_indices"]
    assert np.all(np.diff(train) > 0) and train.min() >= 0 and train.max() < 60000
    assert np.all(np.diff(test) > 0) and test.min() >= 60000 and test.max() < 70000
    assert int(arrays["seed"]) == make_subset.SEED
    assert EMBEDDED_SUBSET.stat().st_size < 5_000_000
    assert (EMBEDDED_SUBSET.parent / "LICENSE-fashion-mnist").read_text().count("Zalando") >= 1


@needs_debian
def test_embedded_subset_is_what_make_subset_draws_from_the_debian_files():
    rebuilt = make_subset.build()
    stored = embedded_fashion_mnist()
    assert sorted(rebuilt) == sorted(stored)
    for name, array in rebuilt.items():
        np.testing.assert_array_equal(array, stored[name], err_msg=name)


def test_subset_writer_is_byte_reproducible(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.uint8).reshape(3, 4), "seed": np.array(0, dtype=np.int64)}
    first, second = tmp_path / "1.npz", tmp_path / "2.npz"
    make_subset.write_npz(arrays, first)
    make_subset.write_npz(arrays, second)
    assert first.read_bytes() == second.read_bytes()
    with np.load(first) as loaded:
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
        assert loaded["seed"].shape == ()
    assert all(info.compress_type == zipfile.ZIP_LZMA for info in zipfile.ZipFile(io.BytesIO(first.read_bytes())).infolist())


def test_embedded_roles_sizes_shapes_and_balance(default_splits):
    splits = default_splits
    assert [len(getattr(splits, role)) for role in ROLES] == [1000, 1000, 4000, 2000]
    assert splits.num_classes == 10 and splits.source == "fashion-mnist"
    for role in ROLES:
        split = getattr(splits, role)
        assert split.inputs.shape[1:] == (1, 28, 28) and split.inputs.dtype == torch.float32
        assert split.labels.dtype == torch.int64
        assert torch.bincount(split.labels, minlength=10).tolist() == [len(split) // 10] * 10
    assert (splits.test.indices >= 60000).all() and (splits.members.indices < 60000).all()
    assert abs(float(splits.members.inputs.mean())) < 0.1 and abs(float(splits.members.inputs.std()) - 1) < 0.1


def test_embedded_inputs_are_the_stored_pixels_normalised(default_splits):
    arrays = embedded_fashion_mnist()
    row = int(np.searchsorted(arrays["train_indices"], default_splits.members.indices[0]))
    expected = (torch.from_numpy(arrays["train_images"][row].astype(np.float32)) / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(default_splits.members.inputs[0, 0], expected)
    assert int(default_splits.members.labels[0]) == int(arrays["train_labels"][row])


def test_embedded_is_deterministic_by_seed(default_splits):
    again = fashion_mnist_embedded(seed=0)
    other = fashion_mnist_embedded(seed=1)
    assert again.provenance() == default_splits.provenance()
    assert not np.array_equal(other.members.indices, default_splits.members.indices)


def test_roles_are_disjoint(default_splits):
    seen = np.concatenate([getattr(default_splits, role).indices for role in ROLES])
    assert len(np.unique(seen)) == len(seen)


def test_members_stay_the_same_when_population_grows(default_splits):
    bigger = fashion_mnist_embedded(population=8000, test=100)
    np.testing.assert_array_equal(bigger.members.indices, default_splits.members.indices)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"members": 3000, "non_members": 3000, "population": 5000}, "10000 examples"),
        ({"test": 2001}, "2000 test examples"),
        ({"members": 1000, "non_members": 500}, "balanced"),
        ({"population": -1}, "non-negative"),
        ({"members": 0, "non_members": 0}, "at least 1"),
    ],
)
def test_embedded_refuses_impossible_sizes(kwargs, message):
    with pytest.raises(UsageError, match=message):
        fashion_mnist_embedded(**kwargs)


def test_full_names_the_debian_package_when_absent(tmp_path):
    with pytest.raises(UsageError, match="dataset-fashion-mnist") as info:
        fashion_mnist_full(root=tmp_path)
    assert "\n" not in str(info.value)


def test_full_rejects_a_corrupt_file(tmp_path):
    for name in FASHION_MNIST_FILES.values():
        (tmp_path / name).write_bytes(b"not gzip")
    with pytest.raises(UsageError, match="cannot read"):
        fashion_mnist_full(root=tmp_path, members=10, non_members=10, population=0, test=10)


@needs_debian
def test_full_reads_the_debian_files_with_original_indices():
    splits = fashion_mnist_full(members=500, non_members=500, population=1000, test=500, seed=3)
    assert [len(getattr(splits, role)) for role in ROLES] == [500, 500, 1000, 500]
    assert (splits.test.indices >= 60000).all() and (splits.population.indices < 60000).all()
    assert torch.bincount(splits.members.labels).tolist() == [50] * 10
    # A sample that is in the embedded subset has the same pixels in both builders.
    arrays = embedded_fashion_mnist()
    shared = np.intersect1d(splits.test.indices, arrays["test_indices"])
    assert len(shared) > 0
    row_full = int(np.searchsorted(splits.test.indices, shared[0]))
    row_embedded = int(np.searchsorted(arrays["test_indices"], shared[0]))
    expected = (torch.from_numpy(arrays["test_images"][row_embedded].astype(np.float32)) / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(splits.test.inputs[row_full, 0], expected)
