"""The one results type of every membership attack (after TF Privacy's MIA): scores, ROC, AUC, TPR
at low FPR, balanced accuracy at a calibrated threshold, advantage, an ε lower bound — each with an
interval — plus per-class slices, ``summary()`` and a JSON-ready ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from safecompress import metrics
from safecompress.attacks.data_structures import AttackInputs, Role
from safecompress.metrics import EpsilonBound, Interval, RateAtFpr, RocCurve


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

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "non_members": self.non_members, "auc": self.auc.to_dict(), "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr}


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
            worst = max(self.slices.items(), key=lambda kv: kv[1].auc.value)
            lines.append(f"  most exposed slice: {worst[0]} AUC {worst[1].auc}")
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
            out[f"class={int(c)}"] = SliceMetrics(m, n, metrics.delong_interval(scores[rows], y, level), rate)
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
