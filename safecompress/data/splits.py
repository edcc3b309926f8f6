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
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Sequence, Union

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

    @classmethod
    def from_arrays(
        cls,
        inputs: Any,
        labels: Any,
        *,
        members: Optional[int] = None,
        non_members: Optional[int] = None,
        population: Optional[int] = None,
        test: Optional[int] = None,
        roles: Optional[Mapping[str, Sequence[int]]] = None,
        num_classes: Optional[int] = None,
        seed: int = 0,
        source: str = "arrays",
    ) -> "DataSplits":
        """The four roles from in-memory examples: a NumPy array or tensor of inputs (or a dict of
        them, e.g. token ids and an attention mask) and integer labels, row ``i`` being example ``i``.

        Roles are drawn as the built-in datasets draw them (:func:`~safecompress.data.sampling.draw_roles`:
        disjoint, stratified by label, seeded), with ``members`` rows and as many ``non_members``
        unless given; or pass ``roles``, a mapping of every role to its row indices. Floating inputs
        become float32 (what models train in); integer inputs stay integers. ``source`` names the
        data in the provenance, whose indices are the rows of these arrays.
        """
        import torch

        from safecompress.data.sampling import ROLES, check_sizes, draw_roles
        from safecompress.errors import UsageError

        x = {k: _as_tensor(v) for k, v in inputs.items()} if isinstance(inputs, Mapping) else _as_tensor(inputs)
        y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise UsageError(f"{source}: labels must be a 1-D array of integer class ids, got shape {y.shape} dtype {y.dtype}")
        lengths = {k: len(v) for k, v in x.items()} if isinstance(x, dict) else {"inputs": len(x)}
        if any(length != len(y) for length in lengths.values()):
            raise UsageError(f"{source}: {len(y)} labels but inputs of {lengths} rows")
        classes = int(y.max()) + 1 if num_classes is None and len(y) else int(num_classes or 0)
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise UsageError(f"{source}: labels must lie in [0, {classes}), got {int(y.min())}..{int(y.max())}")
        if roles is None:
            if members is None or population is None or test is None:
                raise UsageError(f"{source}: give the role sizes (members=, population=, test=; non_members defaults to members) or roles= with the rows of each role")
            positions = draw_roles(source, check_sizes(source, members, members if non_members is None else non_members, population, test), y, seed)
        else:
            missing = [role for role in ROLES if role not in roles]
            if missing:
                raise UsageError(f"{source}: roles= lacks {', '.join(missing)} (it needs {', '.join(ROLES)})")
            positions = {role: np.asarray(roles[role], dtype=np.int64).ravel() for role in ROLES}
            for role, rows in positions.items():
                if len(rows) and (rows.min() < 0 or rows.max() >= len(y)):
                    raise UsageError(f"{source}: roles[{role!r}] has rows outside 0..{len(y) - 1}")
                if len(np.unique(rows)) != len(rows):
                    raise UsageError(f"{source}: roles[{role!r}] lists a row twice")
            check_sizes(source, *(len(positions[role]) for role in ROLES))  # the same balance rule as drawn roles
        label_tensor = torch.tensor(y, dtype=torch.long)  # a copy: the caller's array may be read-only

        def split(role: str) -> Split:
            rows = torch.as_tensor(positions[role], dtype=torch.long)
            part = {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]
            return Split(part, label_tensor[rows], positions[role], role)

        try:
            return cls(split("members"), split("non_members"), split("population"), split("test"), classes, source, seed)
        except ValueError as error:  # a row in two roles
            raise UsageError(f"{source}: {error}") from None

    @classmethod
    def from_dataset(cls, dataset: Any, **options: Any) -> "DataSplits":
        """The four roles from a map-style torch ``Dataset`` of ``(input, label)`` pairs, read into
        memory once (every role is queried many times); ``options`` as for :meth:`from_arrays`."""
        import torch

        items = [dataset[i] for i in range(len(dataset))]
        inputs = torch.stack([torch.as_tensor(item[0]) for item in items]) if items else torch.empty(0)
        labels = np.asarray([int(item[1]) for item in items], dtype=np.int64)
        return cls.from_arrays(inputs, labels, **{"source": type(dataset).__name__, **options})

    def map_inputs(self, function: Callable[[Any], Any]) -> "DataSplits":
        """The same roles with ``function`` applied to every role's inputs (e.g. standardising by the
        members' statistics); labels, indices and provenance are kept."""
        parts = [Split(function(part.inputs), part.labels, part.indices, part.name) for part in (self.members, self.non_members, self.population, self.test)]
        return DataSplits(*parts, self.num_classes, self.source, self.seed, dict(self.extra))

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


def _as_tensor(values: Any) -> "torch.Tensor":
    """A tensor of ``values``: floating data as float32, integers as they are."""
    import torch

    if isinstance(values, torch.Tensor):
        tensor = values
    else:
        array = np.asarray(values)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())  # torch cannot share a read-only buffer
    return tensor.float() if tensor.is_floating_point() else tensor
