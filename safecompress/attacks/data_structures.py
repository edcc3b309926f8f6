"""The one input type of every membership attack (after TF Privacy's MIA); the results type is in
:mod:`safecompress.attacks.results`.

:class:`AttackInputs` is a table of samples — the target model's outputs, labels, membership truth
and a *role* per sample — plus optional extras some attacks need (last-layer gradients, reference
model outputs). Roles enforce the protocol of METHOD.md §4: attacks may fit anything on
``CALIBRATION`` and ``POPULATION`` rows; metrics are computed on ``EVALUATION`` rows only, which are
balanced (as many members as non-members).

:class:`AttackResults` is what every attack returns: scores, ROC, AUC, TPR at low FPR, balanced
accuracy at a calibrated threshold, advantage, an ε lower bound — each with an interval — plus
per-class slices, ``summary()`` and a JSON-ready ``to_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Optional

import numpy as np
from scipy.special import log_softmax, logsumexp


class Role(IntEnum):
    """What a sample may be used for: fitting (calibration, population) or scoring (evaluation)."""

    CALIBRATION = 0
    EVALUATION = 1
    POPULATION = 2


def assign_roles(n_members: int, n_non_members: int, calibration_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Roles for ``n_members`` members followed by ``n_non_members`` non-members.

    Each side is split into calibration and evaluation at ``calibration_fraction`` by ``seed``; the
    larger evaluation side is then cut down to the smaller one (the surplus joins calibration) so
    that evaluation is balanced and accuracy-type metrics mean what they say.
    """
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(f"calibration_fraction must be in (0, 1), not {calibration_fraction}")
    rng = np.random.default_rng(seed)
    roles = np.full(n_members + n_non_members, Role.CALIBRATION, dtype=np.int8)
    evaluation = []
    for offset, size in ((0, n_members), (n_members, n_non_members)):
        order = offset + rng.permutation(size)
        evaluation.append(order[int(round(calibration_fraction * size)) :])
    keep = min(len(e) for e in evaluation)
    for e in evaluation:
        roles[e[:keep]] = Role.EVALUATION
    return roles


@dataclass
class AttackInputs:
    """Per-sample target outputs, labels, membership truth and roles; optional gradients and references.

    Give the target's outputs as ``logits`` or ``probs`` (shape ``(n, C)``); ``loss`` defaults to the
    cross-entropy computed from them. ``gradients`` (``(n, g)``) feed the white-box attack.
    Reference-model outputs ``ref_logits``/``ref_probs`` have shape ``(k, n, C)`` on the same samples,
    and ``ref_in[j, i]`` says whether sample ``i`` was in reference model ``j``'s training set
    (default: nowhere, i.e. every reference is OUT for every row). Population rows are
    non-members of the target (``membership`` 0).
    """

    labels: np.ndarray
    membership: np.ndarray
    role: np.ndarray
    logits: Optional[np.ndarray] = None
    probs: Optional[np.ndarray] = None
    loss: Optional[np.ndarray] = None
    gradients: Optional[np.ndarray] = None
    ref_logits: Optional[np.ndarray] = None
    ref_probs: Optional[np.ndarray] = None
    ref_in: Optional[np.ndarray] = None
    source_indices: Optional[np.ndarray] = None
    _log_probs: Optional[np.ndarray] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("logits", "probs", "loss", "gradients", "ref_logits", "ref_probs"):
            if getattr(self, name) is not None:
                setattr(self, name, np.asarray(getattr(self, name)))
        self.labels = np.asarray(self.labels, dtype=np.int64).ravel()
        n = self.labels.size
        self.membership = np.asarray(self.membership).astype(np.int8).ravel()
        self.role = np.asarray(self.role).astype(np.int8).ravel()
        if (self.logits is None) == (self.probs is None):
            raise ValueError("give the target's outputs as exactly one of logits= or probs=")
        outputs = self._outputs()
        if outputs.ndim != 2 or outputs.shape[0] != n:
            raise ValueError(f"outputs have shape {outputs.shape}; expected ({n}, num_classes)")
        for name in ("membership", "role", "loss", "source_indices"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows, labels have {n}")
        if not np.isin(self.membership, (0, 1)).all():
            raise ValueError("membership must be 0 (non-member) or 1 (member)")
        if not np.isin(self.role, [r.value for r in Role]).all():
            raise ValueError("role must hold Role codes (0 calibration, 1 evaluation, 2 population)")
        if (self.membership[self.role == Role.POPULATION] != 0).any():
            raise ValueError("population rows must be non-members of the target")
        if self.labels.min(initial=0) < 0 or self.labels.max(initial=0) >= outputs.shape[1]:
            raise ValueError(f"labels must lie in [0, {outputs.shape[1]})")
        if self.gradients is not None and (self.gradients.ndim != 2 or self.gradients.shape[0] != n):
            raise ValueError(f"gradients have shape {self.gradients.shape}; expected ({n}, g)")
        self._check_references(n, outputs.shape[1])
        eval_membership = self.membership[self.role == Role.EVALUATION]
        if eval_membership.size and (eval_membership.min() == eval_membership.max()):
            raise ValueError("evaluation rows must include both members and non-members")

    def _check_references(self, n: int, num_classes: int) -> None:
        if self.ref_logits is not None and self.ref_probs is not None:
            raise ValueError("give reference outputs as ref_logits= or ref_probs=, not both")
        refs = self.ref_logits if self.ref_logits is not None else self.ref_probs
        if refs is None:
            if self.ref_in is not None:
                raise ValueError("ref_in given without reference outputs")
            return
        if refs.ndim != 3 or refs.shape[1:] != (n, num_classes):
            raise ValueError(f"reference outputs have shape {refs.shape}; expected (k, {n}, {num_classes})")
        if self.ref_in is None:
            self.ref_in = np.zeros(refs.shape[:2], dtype=bool)
        self.ref_in = np.asarray(self.ref_in, dtype=bool)
        if self.ref_in.shape != refs.shape[:2]:
            raise ValueError(f"ref_in has shape {self.ref_in.shape}; expected {refs.shape[:2]}")

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_outputs(
        cls,
        member_outputs: np.ndarray,
        member_labels: np.ndarray,
        non_member_outputs: np.ndarray,
        non_member_labels: np.ndarray,
        population_outputs: Optional[np.ndarray] = None,
        population_labels: Optional[np.ndarray] = None,
        *,
        outputs_are: str = "logits",
        calibration_fraction: float = 0.5,
        seed: int = 0,
    ) -> "AttackInputs":
        """Inputs from cached outputs, with the default protocol's roles (see :func:`assign_roles`)."""
        if outputs_are not in ("logits", "probs"):
            raise ValueError("outputs_are must be 'logits' or 'probs'")
        parts = [(member_outputs, member_labels), (non_member_outputs, non_member_labels)]
        if population_outputs is not None:
            parts.append((population_outputs, population_labels))
        outputs = np.concatenate([np.asarray(o, dtype=np.float32) for o, _ in parts])
        labels = np.concatenate([np.asarray(lab) for _, lab in parts])
        n_m, n_n = len(member_labels), len(non_member_labels)
        n_p = len(labels) - n_m - n_n
        membership = np.r_[np.ones(n_m), np.zeros(n_n + n_p)]
        role = np.r_[assign_roles(n_m, n_n, calibration_fraction, seed), np.full(n_p, Role.POPULATION)]
        return cls(labels=labels, membership=membership, role=role, **{outputs_are: outputs})

    # --- views ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.labels.size

    @property
    def num_classes(self) -> int:
        return self._outputs().shape[1]

    @property
    def num_references(self) -> int:
        refs = self.ref_logits if self.ref_logits is not None else self.ref_probs
        return 0 if refs is None else refs.shape[0]

    def _outputs(self) -> np.ndarray:
        return self.logits if self.logits is not None else self.probs  # type: ignore[return-value]

    def mask(self, role: Role) -> np.ndarray:
        return self.role == role

    def log_probs(self) -> np.ndarray:
        """Log-softmax of the target's outputs, float64, computed once."""
        if self._log_probs is None:
            self._log_probs = _to_log_probs(self.logits, self.probs)
        return self._log_probs

    def probabilities(self) -> np.ndarray:
        return np.exp(self.log_probs())

    def per_sample_loss(self) -> np.ndarray:
        """The given losses, or cross-entropy of the true label."""
        if self.loss is not None:
            return np.asarray(self.loss, dtype=np.float64)
        return -self.log_probs()[np.arange(len(self)), self.labels]

    def true_class_logit_margin(self) -> np.ndarray:
        """φ = log p_y − log(1 − p_y) of the target (LiRA's statistic), stable for confident models."""
        return logit_margin(self.log_probs(), self.labels)

    def reference_in(self) -> np.ndarray:
        """(k, n) IN masks of the reference models; an error naming the fix when there are none."""
        if self.num_references == 0 or self.ref_in is None:
            raise ValueError("these inputs carry no reference-model outputs; train references first (refs=k)")
        return self.ref_in

    def ref_log_probs(self) -> np.ndarray:
        """(k, n, C) log-probabilities of the reference models."""
        self.reference_in()
        return _to_log_probs(self.ref_logits, self.ref_probs)

    def calibration_non_member_mask(self) -> np.ndarray:
        """Calibration non-members, or the population when the calibration role has none."""
        own = self.mask(Role.CALIBRATION) & (self.membership == 0)
        return own if own.any() else self.mask(Role.POPULATION)


def _to_log_probs(logits: Optional[np.ndarray], probs: Optional[np.ndarray]) -> np.ndarray:
    if logits is not None:
        return log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-300, None)
    return np.log(p / p.sum(axis=-1, keepdims=True))


def logit_margin(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_y − log Σ_{i≠y} p_i over the last axis, for any leading shape ``(..., n, C)``."""
    one_hot = np.zeros(log_probs.shape[-2:], dtype=bool)
    one_hot[np.arange(labels.size), labels] = True
    log_py = np.where(one_hot, log_probs, 0.0).sum(axis=-1)
    log_rest = logsumexp(np.where(one_hot, -np.inf, log_probs), axis=-1)
    return log_py - log_rest


# --- results ------------------------------------------------------------------------------------
