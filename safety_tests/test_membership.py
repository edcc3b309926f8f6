"""Membership inference: does the model reveal who was in its training data? (METHOD.md §4–6)"""
import numpy as np
import torch

import safecompress
from safecompress.inference import predict_logits
from safecompress.metrics import auc_interval


@safecompress.mark.cost("cheap")
@safecompress.mark.remedy("confidence_penalty")
def test_loss_attack_auc(model, data, device, record, thresholds):
    """The loss-threshold attack (score −ℓ) on balanced members vs non-members; AUC gated on its DeLong interval."""
    size = min(len(data.members), len(data.non_members))
    members, non_members = data.members.subset(np.arange(size)), data.non_members.subset(np.arange(size))
    losses = [
        torch.nn.functional.cross_entropy(predict_logits(model, split, device), split.labels, reduction="none")
        for split in (members, non_members)
    ]
    scores = -torch.cat(losses).numpy()
    membership = np.r_[np.ones(size), np.zeros(size)]
    interval = auc_interval(scores, membership)
    record.at_most("loss_auc", interval.value, thresholds["loss_auc_max"], interval=(interval.low, interval.high))
