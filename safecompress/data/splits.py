"""The data contract of every membership test: members, non-members, population (METHOD.md §4).

A :class:`Split` is a block of examples kept in memory as tensors (images, or token ids plus an
attention mask for text) with their labels and their indices in the source dataset, so a report can
name exactly which samples were members. :class:`DataSplits` groups the four roles:

- ``members``: the data the model under test was trained on;
- ``non_members``: same distribution, never trained on (membership evaluation);
- ``population``: extra same-distribution data for attack calibration and reference models;
- ``test``: held out from every selection, for honest task accuracy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Union

import numpy as np

if TYPE_CHECKING:  # torch stays a lazy import: `import safecompress` must not pull it in.
    import torch

Inputs = Union["torch.Tensor", Mapping[str, "torch.Tensor"]]


@dataclass
class Split:
    """Examples of one role: ``inputs`` (a tensor, or a dict of tensors for transformers), ``labels``."""

    inputs: Inputs
    labels: "torch.Tensor"
    indices: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        n = len(self.labels)
        sizes = {k: len(v) for k, v in self.input_items()}
        if any(s != n for s in sizes.values()) or len(self.indices) != n:
            raise ValueError(f"split {self.name!r}: inputs {sizes}, labels {n}, indices {len(self.indices)} differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        """Shapes and dtypes, never the tensors: a split holds thousands of rows."""
        shapes = ", ".join(f"{key + ': ' if key else ''}{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for key, t in self.input_items())
        return f"Split({self.name or 'unnamed'!r}, {len(self)} rows, inputs {shapes})"

    def input_items(self) -> list[tuple[str, "torch.Tensor"]]:
        if isinstance(self.inputs, Mapping):
            return list(self.inputs.items())
        return [("", self.inputs)]

    def subset(self, positions: Any, name: str | None = None) -> "Split":
        """Rows at ``positions`` (array of ints or a boolean mask), keeping source indices."""
        import torch

        pos = torch.as_tensor(np.asarray(positions))
        if pos.dtype == torch.bool:
            pos = pos.nonzero().flatten()
        if isinstance(self.inputs, Mapping):
            inputs: Inputs = {k: v[pos] for k, v in self.inputs.items()}
        else:
            inputs = self.inputs[pos]
        return Split(inputs, self.labels[pos], self.indices[pos.numpy()], name if name is not None else self.name)

    def batches(self, batch_size: int, device: Any = "cpu") -> Iterator[tuple[Inputs, "torch.Tensor"]]:
        """Ordered batches moved to ``device`` (no shuffling: outputs line up with ``indices``)."""
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            if isinstance(self.inputs, Mapping):
                x: Inputs = {k: v[start:stop].to(device) for k, v in self.inputs.items()}
            else:
                x = self.inputs[start:stop].to(device)
            yield x, self.labels[start:stop].to(device)

    def split(self, fraction: float, seed: int) -> tuple["Split", "Split"]:
        """Two disjoint random parts, the first with ``round(fraction * len)`` rows."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self))
        cut = int(round(fraction * len(self)))
        return self.subset(np.sort(order[:cut])), self.subset(np.sort(order[cut:]))

    def fingerprint(self) -> str:
        """SHA-256 of the tensors' bytes and the indices: identifies exactly this data."""
        digest = hashlib.sha256()
        for key, tensor in self.input_items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(self.labels.detach().cpu().contiguous().numpy().tobytes())
        digest.update(self.indices.tobytes())
        return digest.hexdigest()


@dataclass
class DataSplits:
    """The roles of METHOD.md §4 for one dataset. ``source`` names the dataset the indices refer to."""

    members: Split
    non_members: Split
    population: Split
    test: Split
    num_classes: int
    source: str = ""
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        roles = {"members": self.members, "non_members": self.non_members, "population": self.population, "test": self.test}
        for role, split in roles.items():
            if not split.name:
                split.name = role
        seen: dict[int, str] = {}
        for role, split in roles.items():
            for index in split.indices.tolist():
                if index in seen:
                    raise ValueError(f"sample {index} of {self.source or 'the dataset'} is in both {seen[index]} and {role}")
                seen[index] = role

    def __repr__(self) -> str:
        """One line: the source, its classes and seed, and the size of every role."""
        roles = ", ".join(f"{split.name} {len(split)}" for split in (self.members, self.non_members, self.population, self.test))
        return f"DataSplits({self.source or 'unnamed'!r}, {self.num_classes} classes, seed {self.seed}: {roles})"

    def provenance(self) -> dict[str, Any]:
        """Which samples play which role, so a third party can re-audit with their own attack."""
        return {
            "source": self.source,
            "seed": self.seed,
            "num_classes": self.num_classes,
            "roles": {split.name: {"count": len(split), "indices": split.indices.tolist(), "sha256": split.fingerprint()} for split in (self.members, self.non_members, self.population, self.test)},
        }
