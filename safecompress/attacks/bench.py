"""Synthetic attack inputs and the RMIA/LiRA scoring benchmark.

:func:`synthetic_attack_inputs` draws logits from a simple generative model — every sample has a
difficulty shared by all models, and a model's true-label logit rises by ``signal`` when the sample
was in its training set — so attacks can be checked without training anything: ``signal=0`` is the
null (no leakage), ``signal>0`` a known leak.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from safecompress.attacks.data_structures import AttackInputs, Role, assign_roles
from safecompress.attacks.lira import lira_attack
from safecompress.attacks.reference import reference_membership
from safecompress.attacks.rmia import rmia_attack, rmia_scores, rmia_scores_pairwise


def synthetic_attack_inputs(
    n_targets: int = 2_000,
    n_population: int = 2_000,
    n_refs: int = 4,
    num_classes: int = 10,
    signal: float = 1.0,
    online: bool = False,
    calibration_fraction: float = 0.5,
    seed: int = 0,
) -> AttackInputs:
    """Targets (half members) then population rows, with ``n_refs`` references in complementary pairs.

    References are trained (in the generative sense) on halves of the population, or of all rows
    when ``online``. Set ``n_refs=0`` for inputs without references.
    """
    rng = np.random.default_rng(seed)
    n = n_targets + n_population
    n_members = n_targets // 2
    labels = rng.integers(0, num_classes, n)
    difficulty = rng.normal(0.0, 2.0, n)
    membership = np.r_[np.ones(n_members), np.zeros(n - n_members)].astype(np.int8)
    role = np.r_[assign_roles(n_members, n_targets - n_members, calibration_fraction, seed), np.full(n_population, Role.POPULATION)]

    def logits(trained_on: np.ndarray) -> np.ndarray:
        out = rng.normal(0.0, 1.0, (n, num_classes))
        out[np.arange(n), labels] += 2.0 + difficulty + signal * trained_on
        return out.astype(np.float32)

    ref_logits = ref_in = None
    if n_refs:
        pool = np.arange(n) if online else np.arange(n_targets, n)
        ref_in = np.zeros((n_refs, n), dtype=bool)
        ref_in[:, pool] = reference_membership(pool.size, n_refs, seed)
        ref_logits = np.stack([logits(ref_in[j]) for j in range(n_refs)])
    return AttackInputs(labels, membership, role, logits=logits(membership == 1), ref_logits=ref_logits, ref_in=ref_in)


def _best_time(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run_attack_benchmark(n_targets: int = 10_000, n_population: int = 10_000, n_refs: int = 4, num_classes: int = 10, pairwise_sample: int = 1_000, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Seconds to score ``n_targets`` against ``n_population`` z samples with RMIA, and for context LiRA.

    ``rmia_sorted_scoring_s`` is the O((|X|+|Z|) log |Z|) core; ``rmia_pairwise_scoring_s`` the
    O(|X|·|Z|) definition, timed on ``pairwise_sample`` targets and scaled to all of them (and checked
    equal to the sorted scores there). The full attacks include a-tuning and every metric.
    """
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n_targets), rng.normal(size=n_population)
    sample = x[:pairwise_sample]
    sorted_s = _best_time(lambda: rmia_scores(x, z), repeats)
    pairwise_s = _best_time(lambda: rmia_scores_pairwise(sample, z), 1) * n_targets / max(sample.size, 1)
    agree = bool(np.array_equal(rmia_scores(sample, z), rmia_scores_pairwise(sample, z)))
    inputs = synthetic_attack_inputs(n_targets, n_population, n_refs, num_classes, seed=seed)
    started = time.perf_counter()
    rmia = rmia_attack(inputs, seed=seed)
    rmia_s = time.perf_counter() - started
    started = time.perf_counter()
    lira = lira_attack(inputs)
    lira_s = time.perf_counter() - started
    return {
        "n_targets": n_targets,
        "n_population": n_population,
        "n_refs": n_refs,
        "rmia_sorted_scoring_s": sorted_s,
        "rmia_pairwise_scoring_s": pairwise_s,
        "speedup": pairwise_s / sorted_s if sorted_s > 0 else float("inf"),
        "sorted_equals_pairwise": agree,
        "rmia_attack_s": rmia_s,
        "rmia_auc": rmia.auc.value,
        "rmia_a": rmia.extra["a"],
        "lira_attack_s": lira_s,
        "lira_auc": lira.auc.value,
    }
