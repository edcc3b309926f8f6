"""Drawing the roles of METHOD.md §4 from a pool of labelled examples.

Every builder goes through :func:`draw_roles`, so every dataset gets the same guarantees: the roles are
disjoint, each role follows the pool's class proportions (members and non-members have the same label
distribution, otherwise an attack could score by guessing the class), and the draw depends on
``seed`` alone.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from safecompress.errors import UsageError

ROLES = ("members", "non_members", "population", "test")


def check_sizes(dataset: str, members: int, non_members: int, population: int, test: int) -> dict[str, int]:
    """The requested role sizes, refused when they cannot give a balanced membership test."""
    sizes = {"members": members, "non_members": non_members, "population": population, "test": test}
    for role, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise UsageError(f"{dataset}: {role} must be a non-negative integer, got {size!r}")
    if members < 1:
        raise UsageError(f"{dataset}: members must be at least 1, got {members}")
    if members != non_members:
        raise UsageError(f"{dataset}: members ({members}) and non_members ({non_members}) must be equal: membership attacks are evaluated on balanced sets (METHOD.md §4)")
    return {role: int(size) for role, size in sizes.items()}


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the positions in which every prefix follows the class proportions.

    Each class is shuffled and its k-th item gets the key ``(k + u) / n_class`` with ``u`` uniform in
    [0, 1): sorting by key interleaves the classes evenly, so consecutive slices of the order are
    stratified samples. When the classes are equally large, a slice of ``k * num_classes`` items holds
    exactly ``k`` of each class.
    """
    keys = np.empty(len(labels), dtype=np.float64)
    for label in np.unique(labels):
        positions = np.flatnonzero(labels == label)
        shuffled = positions[rng.permutation(len(positions))]
        keys[shuffled] = (np.arange(len(positions)) + rng.random(len(positions))) / len(positions)
    return np.argsort(keys, kind="stable")


def draw_roles(
    dataset: str,
    sizes: Mapping[str, int],
    train_labels: np.ndarray,
    seed: int,
    test_labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sorted positions for each role: consecutive slices of one stratified order of the pool.

    Members, non-members and population come from ``train_labels``; the test role comes from
    ``test_labels`` when the dataset has its own test set, otherwise from what the other roles left.
    """
    wanted_train = sizes["members"] + sizes["non_members"] + sizes["population"]
    pooled = test_labels is None
    if pooled:
        wanted_train += sizes["test"]
    if wanted_train > len(train_labels):
        what = "members + non_members + population" + (" + test" if pooled else "")
        raise UsageError(f"{dataset} has {len(train_labels)} examples for {what}, but {wanted_train} were asked for")
    if not pooled and sizes["test"] > len(test_labels):
        raise UsageError(f"{dataset} has {len(test_labels)} test examples, but test={sizes['test']} was asked for")

    rng = np.random.default_rng(seed)
    order = stratified_order(np.asarray(train_labels), rng)
    test_order = order if pooled else stratified_order(np.asarray(test_labels), rng)
    positions: dict[str, np.ndarray] = {}
    start = 0
    for role in ROLES:
        source = order
        if role == "test" and not pooled:
            source, start = test_order, 0
        positions[role] = np.sort(source[start : start + sizes[role]])
        start += sizes[role]
    return positions
