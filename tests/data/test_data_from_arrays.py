"""Bring your own data (issue 15): ``DataSplits.from_arrays`` / ``from_dataset`` draw the four roles
with the built-ins' guarantees (disjoint, stratified, seeded, provenance by row), or take the rows
of each role; bad input is one clear usage error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from safecompress.data.splits import DataSplits
from safecompress.errors import UsageError


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


def test_roles_are_disjoint_stratified_seeded_and_name_their_rows(cancer) -> None:
    x, y = cancer
    data = DataSplits.from_arrays(x, y, members=140, population=140, test=100, seed=3, source="breast-cancer")
    roles = (data.members, data.non_members, data.population, data.test)
    assert [len(r) for r in roles] == [140, 140, 140, 100] and data.num_classes == 2
    assert len(set(np.concatenate([r.indices for r in roles]).tolist())) == 520  # disjoint
    for role in roles:
        assert role.inputs.dtype == torch.float32
        assert torch.equal(role.inputs, torch.as_tensor(x[role.indices], dtype=torch.float32))  # indices are rows of x
        assert torch.equal(role.labels, torch.as_tensor(y[role.indices]))
    share = y.mean()
    assert abs(float(data.members.labels.float().mean()) - share) < 0.01 and abs(float(data.non_members.labels.float().mean()) - share) < 0.01
    again = DataSplits.from_arrays(x, y, members=140, population=140, test=100, seed=3, source="breast-cancer")
    other = DataSplits.from_arrays(x, y, members=140, population=140, test=100, seed=4, source="breast-cancer")
    assert again.provenance() == data.provenance() and other.provenance() != data.provenance()
    assert repr(data) == "DataSplits('breast-cancer', 2 classes, seed 3: members 140, non_members 140, population 140, test 100)"


def test_explicit_rows_dict_inputs_and_a_torch_dataset(cancer) -> None:
    x, y = cancer
    rows = {"members": [0, 1, 2], "non_members": [3, 4, 5], "population": [6, 7], "test": [8]}
    data = DataSplits.from_arrays(x, y, roles=rows)
    assert data.members.indices.tolist() == [0, 1, 2] and data.test.indices.tolist() == [8]
    tokens = {"input_ids": np.arange(40).reshape(10, 4), "attention_mask": np.ones((10, 4), dtype=np.int64)}
    text = DataSplits.from_arrays(tokens, np.arange(10) % 2, members=3, population=2, test=2)
    assert text.members.inputs["input_ids"].dtype == torch.int64 and text.num_classes == 2
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(x[:100], dtype=torch.float32), torch.as_tensor(y[:100]))
    from_dataset = DataSplits.from_dataset(dataset, members=30, population=20, test=10, seed=1)
    from_arrays = DataSplits.from_arrays(x[:100], y[:100], members=30, population=20, test=10, seed=1, source="TensorDataset")
    assert from_dataset.provenance() == from_arrays.provenance()


def test_map_inputs_keeps_the_roles(cancer) -> None:
    x, y = cancer
    data = DataSplits.from_arrays(x, y, members=100, population=100, test=50)
    mean, std = data.members.inputs.mean(0), data.members.inputs.std(0)
    scaled = data.map_inputs(lambda inputs: (inputs - mean) / std)
    assert scaled.provenance()["roles"]["members"]["indices"] == data.provenance()["roles"]["members"]["indices"]
    assert torch.allclose(scaled.members.inputs.mean(0), torch.zeros(x.shape[1]), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": 300, "population": 300, "test": 10}, "examples for"),
        ({"members": 10, "non_members": 12, "population": 5, "test": 5}, "must be equal"),
        ({"members": 10}, "give the role sizes"),
        ({"roles": {"members": [0], "non_members": [1], "population": [2]}}, "lacks test"),
        ({"roles": {"members": [0], "non_members": [0], "population": [2], "test": [3]}}, "in both members and non_members"),
        ({"roles": {"members": [0], "non_members": [1], "population": [2], "test": [10_000]}}, "outside"),
        ({"roles": {"members": [0, 0], "non_members": [1, 2], "population": [3], "test": [4]}}, "twice"),
    ],
)
def test_bad_roles_are_one_usage_error(cancer, kwargs: dict, message: str) -> None:
    x, y = cancer
    with pytest.raises(UsageError, match=message):
        DataSplits.from_arrays(x, y, **kwargs)


def test_bad_labels_and_lengths_are_usage_errors(cancer) -> None:
    x, y = cancer
    with pytest.raises(UsageError, match="integer class ids"):
        DataSplits.from_arrays(x, y.astype(float), members=10, population=10, test=10)
    with pytest.raises(UsageError, match="labels but inputs"):
        DataSplits.from_arrays(x[:-1], y, members=10, population=10, test=10)
    with pytest.raises(UsageError, match=r"lie in \[0, 2\)"):
        DataSplits.from_arrays(x, y + 1, members=10, population=10, test=10, num_classes=2)


def test_the_documented_tabular_conftest_runs_as_written() -> None:
    """docs/data.md's "Bring your own data" snippet, executed: its fixtures give the repr the page shows."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text()
    section = page[page.index("## Bring your own data") :]
    snippet = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "docs/data.md", "exec"), namespace)  # noqa: S102 - our own documentation
    data = namespace["data"](0)  # fixtures are plain functions
    assert repr(data) in " ".join(section.split())  # the repr quoted below the snippet
    model = namespace["model_factory"]()()
    assert model(data.members.inputs).shape == (140, 2) and namespace["train_recipe"]().epochs == 30
