"""scikit-learn digits, the stratified role sampler, the dataset registry and the light import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pluggy
import pytest
import torch

from safecompress import hookspecs
from safecompress.data import BUILTIN_DATASETS, DataSplits, build_dataset, digits
from safecompress.data import builtin as builtin_datasets
from safecompress.data.sampling import check_sizes, draw_roles, stratified_order
from safecompress.errors import UsageError


def test_digits_shapes_and_roles():
    pytest.importorskip("sklearn")
    splits = digits(members=300, non_members=300, population=500, test=300, seed=1)
    assert splits.members.inputs.shape == (300, 1, 8, 8) and splits.num_classes == 10
    assert splits.extra["input_shape"] == (1, 8, 8)
    counts = torch.bincount(splits.members.labels, minlength=10)
    assert counts.min() >= 28 and counts.max() <= 32
    all_indices = np.concatenate([s.indices for s in (splits.members, splits.non_members, splits.population, splits.test)])
    assert len(np.unique(all_indices)) == 1400 and all_indices.max() < 1797


def test_repr_is_one_short_line_not_the_tensors():
    pytest.importorskip("sklearn")
    splits = digits(members=300, non_members=300, population=500, test=300, seed=1)
    assert repr(splits) == f"DataSplits({splits.source!r}, 10 classes, seed 1: members 300, non_members 300, population 500, test 300)"
    assert repr(splits.members) == "Split('members', 300 rows, inputs (300, 1, 8, 8) float32)"
    text = DataSplits(splits.members.subset([0, 1], "a"), splits.non_members.subset([0], "b"), splits.population.subset([0]), splits.test.subset([0]), 10)
    assert "\n" not in repr(text) and "tensor" not in repr(text)


def test_digits_refuses_more_than_it_has():
    pytest.importorskip("sklearn")
    with pytest.raises(UsageError, match="1797 examples"):
        digits(members=900, non_members=900, population=0, test=0)


def test_stratified_order_balances_every_prefix_of_a_balanced_pool():
    labels = np.repeat(np.arange(5), 40)
    order = stratified_order(labels, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(200))
    for k in (1, 7, 40):
        assert np.bincount(labels[order[: 5 * k]], minlength=5).tolist() == [k] * 5


def test_draw_roles_follows_class_proportions():
    labels = np.array([0] * 900 + [1] * 100)
    roles = draw_roles("toy", check_sizes("toy", 100, 100, 200, 100), labels, seed=0)
    for role, positions in roles.items():
        share = labels[positions].mean()
        assert abs(share - 0.1) <= 0.011, role
    assert len(np.unique(np.concatenate(list(roles.values())))) == 500


def test_registry_holds_the_builtins():
    assert set(BUILTIN_DATASETS) == {"fashion-mnist-embedded", "fashion-mnist", "digits", "wordnet"}


def test_hookimpl_registers_every_builtin():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin_datasets)
    registered: dict[str, object] = {}
    manager.hook.safecompress_register_datasets(register=lambda name, build: registered.setdefault(name, build))
    assert registered == BUILTIN_DATASETS


def test_build_dataset_through_a_plugin_manager():
    def toy(seed: int = 0) -> DataSplits:
        return build_dataset("fashion-mnist-embedded", members=10, non_members=10, population=0, test=10, seed=seed)

    class Plugin:
        @hookspecs.hookimpl
        def safecompress_register_datasets(self, register):
            register("toy", toy)

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin_datasets)
    manager.register(Plugin())
    assert len(build_dataset("toy", pm=manager, seed=2).members) == 10
    assert len(build_dataset("fashion-mnist-embedded", pm=manager, members=20, non_members=20, population=0, test=0).members) == 20
    with pytest.raises(UsageError, match="known: digits, fashion-mnist, fashion-mnist-embedded, toy, wordnet"):
        build_dataset("nope", pm=manager)


def test_build_dataset_by_name_and_by_reference():
    by_name = build_dataset("fashion-mnist-embedded", members=100, non_members=100, population=0, test=100)
    by_reference = build_dataset("safecompress.data.images:fashion_mnist_embedded", members=100, non_members=100, population=0, test=100)
    assert isinstance(by_name, DataSplits)
    assert by_name.provenance() == by_reference.provenance()


def test_build_dataset_uses_a_given_registry():
    calls = []

    def toy(seed: int = 0) -> DataSplits:
        calls.append(seed)
        return build_dataset("fashion-mnist-embedded", members=10, non_members=10, population=0, test=10, seed=seed)

    build_dataset("toy", registry={"toy": toy}, seed=4)
    assert calls == [4]


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("nope", {}, "unknown dataset 'nope'; known: digits, fashion-mnist, fashion-mnist-embedded, wordnet"),
        ("no_such_module:build", {}, "cannot import no_such_module"),
        ("safecompress.data.images:no_such_function", {}, "has no callable"),
        ("digits", {"bogus": 1}, "it takes: members, non_members"),
        ("safecompress.data.images:read_idx", {"path": "x"}, "returned"),
    ],
)
def test_build_dataset_errors_are_one_line_usage_errors(name, kwargs, message, monkeypatch):
    monkeypatch.setattr("safecompress.data.images.read_idx", lambda path: "not splits")
    with pytest.raises(UsageError, match=message) as info:
        build_dataset(name, **kwargs)
    assert "\n" not in str(info.value)


def test_importing_the_data_package_does_not_import_torch():
    code = "import sys, safecompress.data; print(sorted(m for m in ('torch', 'tokenizers', 'sklearn', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
