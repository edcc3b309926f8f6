"""In-loop audit sets: the fixed, small slice of a ``DataSplits`` every candidate model is queried on.

Shared by the shipped safety suite and the examples, so the rule lives in one place: rows are a
stratified random draw (a split keeps its source order, and a source stored class by class — WordNet's
data.noun is — would give a first-rows slice of a few classes), and a reference model's outputs are
computed once on those rows with its IN mask placed at the population rows it was trained on.

The audit's non-members come from the population split, from rows the in-loop reference (reference 0)
was not trained on, never from ``data.non_members``: the gate evaluates on every non-member, and
in-loop tests select candidates and checkpoints, so drawing them there would select on the gate's
evaluation data (METHOD.md §4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from safecompress.attacks.data_structures import Role
from safecompress.attacks.reference import ReferenceModels, outputs_on, reference_membership
from safecompress.attacks.wrappers import inputs_from_logits
from safecompress.data.sampling import stratified_order
from safecompress.data.splits import DataSplits, Split
from safecompress.inference import predict_logits
from safecompress.metrics import clopper_pearson


def draw_rows(split: Split, size: int, seed: int) -> np.ndarray:
    """``size`` rows of ``split`` (all when fewer), stratified by label, in source order."""
    order = stratified_order(split.labels.numpy(), np.random.default_rng(seed))
    return np.sort(order[: min(len(split), size)])


def audit_rows(data: DataSplits, members: int, population: int, seed: int) -> dict[str, np.ndarray]:
    """Rows of the audit set: up to ``members`` members and as many non-members, and up to
    ``population`` z samples (at most half of what is left for both).

    Non-members and z samples are disjoint population rows outside reference 0's training half
    (:func:`~safecompress.attacks.reference.reference_membership` with this seed); ``"non_members"``
    and ``"population"`` both index ``data.population``.
    """
    outside = np.flatnonzero(~reference_membership(len(data.population), 1, seed)[0])
    order = outside[stratified_order(data.population.labels.numpy()[outside], np.random.default_rng(seed))]
    z_count = min(population, len(outside) // 2)
    size = min(len(data.members), members, len(outside) - z_count)
    return {
        "members": draw_rows(data.members, size, seed),
        "non_members": np.sort(order[z_count : z_count + size]),
        "population": np.sort(order[:z_count]),
    }


def audit_splits(data: DataSplits, rows: dict[str, np.ndarray]) -> DataSplits:
    return DataSplits(
        data.members.subset(rows["members"]),
        data.population.subset(rows["non_members"]),
        data.population.subset(rows["population"]),
        data.test,
        data.num_classes,
        data.source,
        data.seed,
    )


def reference_outputs(references: ReferenceModels, audit: DataSplits, rows: dict[str, np.ndarray], device: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ref_logits, ref_in) on the audit set, for references trained on halves of the full population
    (the audit's non-members and z samples are population rows, so their IN masks come from the pool)."""
    parts = [audit.members, audit.non_members, audit.population]
    ref_in = np.zeros((len(references.models), sum(len(p) for p in parts)), dtype=bool)  # members are OUT
    ref_in[:, len(parts[0]) :] = references.in_pool[:, np.concatenate([rows["non_members"], rows["population"]])]
    return outputs_on(references.models, parts, device), ref_in


def holdout_accuracy(model: Any, split: Split, device: Any) -> Any:
    """Top-1 accuracy of ``model`` on a split it never trained on, with its Clopper–Pearson interval.

    The shipped suite's performance guard uses the whole population split: four times the audit's
    non-members, so a one-point drop stands out of the noise (on 500 rows the standard error is
    1.6 points and the guard fires at random).
    """
    return logits_accuracy(predict_logits(model, split, device), split)


def logits_accuracy(logits: Any, split: Split) -> Any:
    """Top-1 accuracy of logits already computed on every row of ``split``, with its Clopper–Pearson interval."""
    logits = torch.as_tensor(logits)
    if len(logits) != len(split):
        raise ValueError(f"logits for {len(logits)} rows, split of {len(split)} rows")
    return clopper_pearson(int((logits.argmax(1) == split.labels.cpu()).sum()), len(split))


def audit_inputs_from_population(model: Any, audit: DataSplits, rows: dict[str, np.ndarray], population_logits: Any, device: Any, seed: int) -> Any:
    """The attack inputs of ``model`` on the audit set, reusing its logits on the whole population split.

    The audit's non-members and z samples are population rows (:func:`audit_rows`), so a suite that
    already queried the population (the accuracy guard does) only queries the audit's members:
    the same inputs as ``make_attack_inputs(model, audit, seed=seed)``, from one pass fewer.
    """
    population = np.asarray(torch.as_tensor(population_logits).float().cpu())
    members = predict_logits(model, audit.members, device).numpy()
    return inputs_from_logits(audit, [members, population[rows["non_members"]], population[rows["population"]]], seed=seed)


def audit_accuracy(inputs: Any) -> Any:
    """Top-1 accuracy on the audit set's non-members (never trained on), with its Clopper–Pearson interval.

    ``inputs`` is the :class:`~safecompress.attacks.AttackInputs` of a model on an audit set.
    """
    rows = (inputs.membership == 0) & (inputs.role != Role.POPULATION)
    correct = int((inputs.logits[rows].argmax(1) == inputs.labels[rows]).sum())
    return clopper_pearson(correct, int(rows.sum()))
