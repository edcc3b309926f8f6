"""The one input type and the one results type of every membership attack (after TF Privacy's MIA).

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
from typing import Any, Optional

import numpy as np
from scipy.special import log_softmax, logsumexp

from safecompress import metrics
from safecompress.metrics import EpsilonBound, Interval, RateAtFpr, RocCurve


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


INPUT_DESCRIPTION_KEYS = ("builder", "normalization", "input_shape", "max_length", "vocab_size", "indexing")


def attack_rows(splits: Any, seed: int, calibration_fraction: float = 0.5) -> dict[str, Any]:
    """Which members and non-members a membership attack scores (``evaluation``) and which set its
    thresholds (``calibration``), by source index in split order, with how the model's inputs were
    built: what an outside auditor needs to rebuild the attack inputs (``assign_roles`` at ``seed``,
    as ``make_attack_inputs`` draws them). The scores of an attack follow ``evaluation``: members,
    then non-members."""
    sizes = (len(splits.members), len(splits.non_members))
    roles = assign_roles(sizes[0], sizes[1], calibration_fraction, seed)
    by_split = {"members": (splits.members.indices, roles[: sizes[0]]), "non_members": (splits.non_members.indices, roles[sizes[0] :])}
    extra = getattr(splits, "extra", {}) or {}
    return {
        "source": splits.source,
        "inputs": {key: extra[key] for key in INPUT_DESCRIPTION_KEYS if key in extra},
        "seed": seed,
        "calibration_fraction": calibration_fraction,
        "evaluation": {name: indices[role == Role.EVALUATION].tolist() for name, (indices, role) in by_split.items()},
        "calibration": {name: indices[role == Role.CALIBRATION].tolist() for name, (indices, role) in by_split.items()},
        "reference_rows": "population (reference models train on draws of it; LiRA/RMIA's z rows come from it)",
    }


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
        for name in ("logits", "probs", "loss", "gradients", "ref_logits", "ref_probs"):
            value = getattr(self, name)
            if value is not None and np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                # A NaN output turns into a constant score, and a constant score into AUC 0.5: a pass.
                raise ValueError(f"{name} contain NaN or Inf: no attack result computed from them would mean anything")
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
@dataclass(frozen=True)
class MetricOptions:
    """How results are computed: interval level and method, the FPRs of interest, δ for ε."""

    level: float = 0.95
    auc_method: str = "delong"
    fprs: tuple[float, ...] = (0.01, 0.001)
    delta: float = 0.0
    min_false_positives: float = 5.0
    n_bootstrap: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics on the evaluation rows of one class: leakage is rarely uniform across classes."""

    members: int
    non_members: int
    auc: Interval
    tpr_at_1pct_fpr: float

    @property
    def reliable(self) -> bool:
        """Enough rows on both sides (:data:`~safecompress.metrics.MIN_SLICE_ROWS`) to rank this slice."""
        return min(self.members, self.non_members) >= metrics.MIN_SLICE_ROWS

    @property
    def note(self) -> str:
        return "" if self.reliable else f"too few samples: {self.members} members + {self.non_members} non-members (needs {metrics.MIN_SLICE_ROWS} of each)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "non_members": self.non_members,
            "auc": self.auc.to_dict(),
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "reliable": self.reliable,
            "note": self.note,
        }


@dataclass(frozen=True)
class AttackResults:
    """Everything one attack measured on the evaluation rows; build it with :meth:`from_scores`."""

    attack: str
    scores: np.ndarray
    membership: np.ndarray
    labels: Optional[np.ndarray]
    roc: RocCurve
    auc: Interval
    tpr_at_fpr: dict[float, RateAtFpr]
    advantage: Interval
    balanced_accuracy: Optional[Interval]
    threshold: Optional[float]
    epsilon: Optional[EpsilonBound]
    slices: dict[str, SliceMetrics]
    tier: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scores(
        cls,
        attack: str,
        scores: np.ndarray,
        membership: np.ndarray,
        *,
        labels: Optional[np.ndarray] = None,
        calibration_scores: Optional[np.ndarray] = None,
        calibration_membership: Optional[np.ndarray] = None,
        options: Optional[MetricOptions] = None,
        tier: Optional[int] = None,
        extra: Optional[dict[str, Any]] = None,
    ) -> "AttackResults":
        """Results from evaluation scores, plus calibration scores for the threshold-based metrics.

        Without calibration scores, balanced accuracy, threshold and ε are left as None rather than
        fit on the evaluation data (which would overstate them).
        """
        opt = options or MetricOptions()
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(membership).astype(np.int8)
        roc = metrics.roc_curve(s, y)
        rates = {fpr: metrics.tpr_at_fpr(s, y, fpr, opt.level, opt.min_false_positives, roc) for fpr in opt.fprs}
        balanced = threshold = epsilon = None
        if calibration_scores is not None and calibration_membership is not None and len(np.unique(calibration_membership)) == 2:
            threshold = metrics.best_balanced_accuracy_threshold(calibration_scores, calibration_membership)
            balanced = metrics.balanced_accuracy_at(s, y, threshold, opt.level)
            epsilon = metrics.calibrated_epsilon(calibration_scores, calibration_membership, s, y, opt.delta, opt.level)
        return cls(
            attack=attack,
            scores=s,
            membership=y,
            labels=None if labels is None else np.asarray(labels),
            roc=roc,
            auc=metrics.auc_interval(s, y, opt.level, opt.auc_method, opt.n_bootstrap, opt.seed),  # type: ignore[arg-type]
            tpr_at_fpr=rates,
            advantage=metrics.advantage_interval(s, y, opt.level, opt.n_bootstrap, opt.seed),
            balanced_accuracy=balanced,
            threshold=threshold,
            epsilon=epsilon,
            slices=_class_slices(s, y, labels, opt.level),
            tier=tier,
            extra=dict(extra or {}),
        )

    @property
    def n_members(self) -> int:
        return int(self.membership.sum())

    @property
    def n_non_members(self) -> int:
        return int(self.membership.size - self.membership.sum())

    def tpr_at(self, fpr: float) -> RateAtFpr:
        """The TPR at one of the FPRs computed (``MetricOptions.fprs``)."""
        try:
            return self.tpr_at_fpr[fpr]
        except KeyError:
            raise KeyError(f"TPR was computed at FPR {sorted(self.tpr_at_fpr)}; not at {fpr}") from None

    def summary(self) -> str:
        """A few lines for terminals and logs."""
        tier = f" (tier {self.tier})" if self.tier is not None else ""
        lines = [f"{self.attack}{tier}: AUC {self.auc} ({self.auc.level:.0%} {self.auc.method}), {self.n_members} members vs {self.n_non_members} non-members"]
        for fpr, rate in sorted(self.tpr_at_fpr.items(), reverse=True):
            flag = "" if rate.reliable else "  [not meaningful: " + rate.note + "]"
            lines.append(f"  TPR@{fpr:.1%} FPR: {rate.tpr.format(percent=True)}{flag}")
        if self.balanced_accuracy is not None and self.epsilon is not None:
            lines.append(
                f"  balanced accuracy {self.balanced_accuracy} at calibrated threshold {self.threshold:.4g}; advantage {self.advantage}; eps >= {self.epsilon.value:.3f} (delta={self.epsilon.delta:g})"
            )
        else:
            lines.append(f"  advantage {self.advantage}; no calibration scores, so no calibrated threshold or eps bound")
        if self.slices:
            ranked = {name: s for name, s in self.slices.items() if s.reliable}
            if ranked:
                worst = max(ranked.items(), key=lambda kv: kv[1].auc.value)
                lines.append(f"  most exposed slice: {worst[0]} AUC {worst[1].auc} ({worst[1].members} + {worst[1].non_members} rows)")
            else:
                name, largest = max(self.slices.items(), key=lambda kv: min(kv[1].members, kv[1].non_members))
                sizes = f"largest {name}: {largest.members} + {largest.non_members}; needs {metrics.MIN_SLICE_ROWS} of each"
                lines.append(f"  most exposed slice: not ranked, every class slice has too few samples ({sizes})")
        return "\n".join(lines)

    def to_dict(self, include_scores: bool = False) -> dict[str, Any]:
        """JSON-serialisable results; the ROC is thinned to its corners, scores only on request."""
        thin = metrics.roc_curve(self.scores, self.membership, drop_intermediate=True)
        out: dict[str, Any] = {
            "attack": self.attack,
            "tier": self.tier,
            "members": self.n_members,
            "non_members": self.n_non_members,
            "auc": self.auc.to_dict(),
            "tpr_at_fpr": {f"{fpr:g}": rate.to_dict() for fpr, rate in self.tpr_at_fpr.items()},
            "advantage": self.advantage.to_dict(),
            "balanced_accuracy": None if self.balanced_accuracy is None else self.balanced_accuracy.to_dict(),
            "threshold": None if self.threshold is None else metrics.json_float(self.threshold),
            "epsilon": None if self.epsilon is None else self.epsilon.to_dict(),
            "slices": {name: s.to_dict() for name, s in self.slices.items()},
            "roc": thin.to_dict(),
            "extra": _jsonable(self.extra),
        }
        if include_scores:
            out["scores"] = [metrics.json_float(v) for v in self.scores]
            out["membership"] = self.membership.astype(int).tolist()
        return out


def _class_slices(scores: np.ndarray, membership: np.ndarray, labels: Optional[np.ndarray], level: float) -> dict[str, SliceMetrics]:
    if labels is None:
        return {}
    labels = np.asarray(labels)
    out = {}
    for c in np.unique(labels):
        rows = labels == c
        y = membership[rows]
        m, n = int(y.sum()), int(rows.sum() - y.sum())
        if m and n:
            rate = metrics.tpr_at_fpr(scores[rows], y, 0.01, level).tpr.value
            out[f"class={int(c)}"] = SliceMetrics(m, n, metrics.small_sample_auc_interval(scores[rows], y, level), rate)
    return out


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays to plain Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return metrics.json_float(float(value))
    if value is None or isinstance(value, str):
        return value
    return repr(value)


def scores_to_results(
    attack: str,
    inputs: AttackInputs,
    scores: np.ndarray,
    *,
    calibration_mask: Optional[np.ndarray] = None,
    options: Optional[MetricOptions] = None,
    tier: Optional[int] = None,
    extra: Optional[dict[str, Any]] = None,
) -> AttackResults:
    """Results for per-row ``scores`` of ``inputs``: evaluation rows are scored, calibration rows set the threshold.

    ``calibration_mask`` defaults to the calibration rows; a learned attack passes its hold-out
    instead, because scores on the rows it was trained on would be optimistic.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(inputs),):
        raise ValueError(f"{scores.shape} scores for {len(inputs)} rows")
    evaluation = inputs.mask(Role.EVALUATION)
    if not evaluation.any():
        raise ValueError("no evaluation rows: assign Role.EVALUATION to a balanced set of members and non-members")
    calibration = inputs.mask(Role.CALIBRATION) if calibration_mask is None else calibration_mask
    if (calibration & evaluation).any():
        raise ValueError("calibration and evaluation rows overlap")
    for name, rows in (("evaluation", evaluation), ("calibration", calibration)):
        if np.isnan(scores[rows]).any():
            raise ValueError(f"attack {attack!r} left {int(np.isnan(scores[rows]).sum())} {name} rows unscored")
    return AttackResults.from_scores(
        attack,
        scores[evaluation],
        inputs.membership[evaluation],
        labels=inputs.labels[evaluation],
        calibration_scores=scores[calibration] if calibration.any() else None,
        calibration_membership=inputs.membership[calibration] if calibration.any() else None,
        options=options,
        tier=tier,
        extra=extra,
    )
