"""Membership-inference attacks with honest statistics (METHOD.md §4–6).

Data in, results out: build :class:`AttackInputs` (from cached outputs, or from a model and a
``DataSplits`` with :func:`make_attack_inputs`), call an attack, read :class:`AttackResults`.
:func:`run_attack` does all of it by name; :data:`BUILTIN_ATTACKS` lists the attacks and their
cost tiers. Statistics and gates live in :mod:`safecompress.metrics`.
"""

from __future__ import annotations

from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, SliceMetrics, assign_roles
from safecompress.attacks.learned import nasr_attack, nasr_whitebox_attack
from safecompress.attacks.lira import lira_attack
from safecompress.attacks.reference import ReferenceRecipe, Reinitialised, train_reference_models
from safecompress.attacks.registry import BUILTIN_ATTACKS, AttackSpec
from safecompress.attacks.rmia import rmia_attack, rmia_scores
from safecompress.attacks.threshold import (
    confidence_attack,
    entropy_attack,
    gap_attack,
    generalization_gap,
    loss_attack,
    modified_entropy_attack,
)
from safecompress.attacks.wrappers import last_layer_gradients, make_attack_inputs, run_attack, run_attacks

__all__ = [
    "AttackInputs",
    "AttackResults",
    "AttackSpec",
    "BUILTIN_ATTACKS",
    "MetricOptions",
    "ReferenceRecipe",
    "Reinitialised",
    "Role",
    "SliceMetrics",
    "assign_roles",
    "confidence_attack",
    "entropy_attack",
    "gap_attack",
    "generalization_gap",
    "last_layer_gradients",
    "lira_attack",
    "loss_attack",
    "make_attack_inputs",
    "modified_entropy_attack",
    "nasr_attack",
    "nasr_whitebox_attack",
    "rmia_attack",
    "rmia_scores",
    "run_attack",
    "run_attacks",
    "train_reference_models",
]
