"""A tier-0 membership attack: the top-2 margin of the target's output.

Training pushes a member's true class far above its strongest rival; on unseen samples the gap is
smaller. The score is that margin in log-probabilities:

* with labels (default): ``log p_y − max_{i≠y} log p_i`` — negative when the model is wrong;
* ``label_free=True``: ``log p_(1) − log p_(2)``, the two largest outputs, for an attacker who sees
  only the prediction vector, not the label.

It needs nothing but the cached outputs, so it costs no inference of its own: cheap enough for the
in-loop (``cheap``) tests. Data in, results out: :class:`AttackInputs` → :class:`AttackResults`,
with the framework's statistics (DeLong AUC interval, TPR at low FPR, calibrated ε bound).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, scores_to_results


def top2_margin_signal(inputs: AttackInputs, label_free: bool = False) -> np.ndarray:
    """Per-row margin (higher = more likely a member), from the target's log-probabilities."""
    log_p = inputs.log_probs()
    if log_p.shape[1] < 2:
        raise ValueError("the top-2 margin needs at least two classes")
    if label_free:
        top2 = np.partition(log_p, -2, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]
    rows = np.arange(len(inputs))
    own = log_p[rows, inputs.labels]
    rivals = log_p.copy()
    rivals[rows, inputs.labels] = -np.inf
    return own - rivals.max(axis=1)


def top2_margin_attack(inputs: AttackInputs, *, label_free: bool = False, options: Optional[MetricOptions] = None) -> AttackResults:
    """Score every row by its top-2 margin; evaluation rows are scored, calibration rows set the
    threshold of the balanced accuracy and the ε bound (``scores_to_results`` enforces the protocol)."""
    scores = top2_margin_signal(inputs, label_free)
    return scores_to_results("top2_margin", inputs, scores, options=options, tier=0, extra={"label_free": label_free})
