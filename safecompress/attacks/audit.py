"""In-loop audit sets: the fixed, small slice of a ``DataSplits`` every candidate model is queried on.

Shared by the shipped safety suite and the examples, so the rule lives in one place: rows are a
stratified random draw (a split keeps its source order, and a source stored class by class — WordNet's
data.noun is — would give a first-rows slice of a few classes), and a reference model's outputs are
computed once on those rows with its IN mask placed at the population rows it was trained on.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from safecompress.attacks.data_structures import Role
from safecompress.attacks.reference import ReferenceModels, outputs_on
from safecompress.data.sampling import stratified_order
from safecompress.data.splits import DataSplits, Split
from safecompress.metrics import clopper_pearson


def draw_rows(split: Split, size: int, seed: int) -> np.ndarray:
    """``size`` rows of ``split`` (all when fewer), stratified by label, in source order."""
    order = stratified_order(split.labels.numpy(), np.random.default_rng(seed))
    return np.sort(order[: min(len(split), size)])


def audit_rows(data: DataSplits, members: int, population: int, seed: int) -> dict[str, np.ndarray]:
    """Rows of the audit set: ``members`` members and as many non-members, ``population`` z samples."""
    size = min(len(data.members), len(data.non_members), members)
    return {
        "members": draw_rows(data.members, size, seed),
        "non_members": draw_rows(data.non_members, size, seed),
        "population": draw_rows(data.population, population, seed),
    }


def audit_splits(data: DataSplits, rows: dict[str, np.ndarray]) -> DataSplits:
    return DataSplits(
        data.members.subset(rows["members"]), data.non_members.subset(rows["non_members"]),
        data.population.subset(rows["population"]), data.test, data.num_classes, data.source, data.seed,
    )


def reference_outputs(references: ReferenceModels, audit: DataSplits, rows: dict[str, np.ndarray], device: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ref_logits, ref_in) on the audit set, for references trained on halves of the full population."""
    parts = [audit.members, audit.non_members, audit.population]
    ref_in = np.zeros((len(references.models), sum(len(p) for p in parts)), dtype=bool)  # targets are OUT
    ref_in[:, len(parts[0]) + len(parts[1]) :] = references.in_pool[:, rows["population"]]
    return outputs_on(references.models, parts, device, 512), ref_in


def audit_accuracy(inputs: Any) -> Any:
    """Top-1 accuracy on the audit set's non-members (never trained on), with its Clopper–Pearson interval.

    ``inputs`` is the :class:`~safecompress.attacks.AttackInputs` of a model on an audit set.
    """
    rows = (inputs.membership == 0) & (inputs.role != Role.POPULATION)
    correct = int((inputs.logits[rows].argmax(1) == inputs.labels[rows]).sum())
    return clopper_pearson(correct, int(rows.sum()))
