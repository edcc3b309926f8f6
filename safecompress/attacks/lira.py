"""Tier 2: the Likelihood Ratio Attack (Carlini et al. 2022).

The statistic is φ = log(p_y / (1 − p_y)) of the true label, roughly Gaussian across models for a
fixed sample. Reference models where the sample was OUT (and, online, IN) give the Gaussian(s):

- offline: score = log Φ((φ − μ_out) / σ_out), the one-sided test of the paper (kept in log form
  so confident members do not tie at 1.0 and low-FPR resolution survives);
- online: score = log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out).

With few references the per-sample variance is noise, so ``variance="global"`` uses one σ per side
(the standard deviation of all IN or all OUT observations, as in the authors' code); ``"auto"``
switches to per-sample σ only when every scored sample has ``PER_EXAMPLE_MIN`` references per side.
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from scipy.special import log_ndtr
from scipy.stats import norm

from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, logit_margin, scores_to_results

PER_EXAMPLE_MIN = 16


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of ``values`` (k, n) over rows where ``mask`` is True (NaN when empty)."""
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mask, values, 0.0).sum(axis=0) / count
        var = np.where(mask, (values - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count - 1, 1)
    return mean, np.sqrt(var)


def uses_online(inputs: AttackInputs, online: Optional[bool]) -> bool:
    """Online when asked, or by default when every scored row has both IN and OUT references."""
    scored = inputs.role != Role.POPULATION
    ref_in = inputs.reference_in()[:, scored]
    has_both = bool(ref_in.any(axis=0).all() and (~ref_in).any(axis=0).all())
    if online and not has_both:
        raise ValueError("online attacks need IN and OUT references for every target: train online references (online=True)")
    return has_both if online is None else online


def lira_attack(
    inputs: AttackInputs,
    *,
    online: Optional[bool] = None,
    variance: Literal["auto", "global", "per_example"] = "auto",
    options: Optional[MetricOptions] = None,
) -> AttackResults:
    """LiRA scores for every calibration and evaluation row from the references in ``inputs``."""
    if variance not in ("auto", "global", "per_example"):
        raise ValueError(f"variance must be 'auto', 'global' or 'per_example', not {variance!r}")
    online = uses_online(inputs, online)
    ref_in = inputs.reference_in()
    ref_phi = logit_margin(inputs.ref_log_probs(), inputs.labels)
    phi = inputs.true_class_logit_margin()
    scored = inputs.role != Role.POPULATION
    sides = {"out": ~ref_in} | ({"in": ref_in} if online else {})
    if (~ref_in[:, scored]).sum(axis=0).min() < 1:
        raise ValueError("every target needs at least one reference model trained without it (OUT)")
    fewest = min(int(mask[:, scored].sum(axis=0).min()) for mask in sides.values())
    per_example = variance == "per_example" or (variance == "auto" and fewest >= PER_EXAMPLE_MIN)
    if per_example and fewest < 2:
        raise ValueError("per-example variance needs at least two references per side for every target")
    gaussians = {}
    for side, mask in sides.items():
        mean, std = _masked_mean_std(ref_phi, mask)
        if not per_example:
            std = np.full_like(mean, ref_phi[mask].std())
        gaussians[side] = (mean, np.maximum(std, 1e-6))
    mean_out, std_out = gaussians["out"]
    scores = np.full(len(inputs), np.nan)
    if online:
        mean_in, std_in = gaussians["in"]
        scores[scored] = norm.logpdf(phi, mean_in, std_in)[scored] - norm.logpdf(phi, mean_out, std_out)[scored]
    else:
        scores[scored] = log_ndtr((phi - mean_out) / std_out)[scored]
    extra = {"online": online, "variance": "per_example" if per_example else "global", "references": inputs.num_references}
    return scores_to_results("lira", inputs, scores, options=options, tier=2, extra=extra)
