"""Model inversion as a membership question: does inverting the model recover its training data more
than the data's distribution?

Threat model: a white-box attacker (weights, no data) reconstructs a representative input of each
class (Fredrikson et al. 2015, MI-FACE) by gradient descent on −log p_c(x) plus a prior: total
variation (natural images are piecewise smooth) and an L2 penalty (keeps x near the data's scale),
from ``restarts`` uniform random starts inside the valid input range. Every evaluated row is then
scored by its highest cosine similarity to its own class's reconstructions. If the reconstructions
resemble the members more than same-class non-members, members score higher and the AUC of
"member vs non-member" rises above 0.5; an AUC at chance means inversion recovers only what the
distribution already says. The result is an ordinary :class:`AttackResults` (AUC with its DeLong
interval, TPR at low FPR), so gates and reports treat it like every membership attack.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safecompress.attacks.data_structures import AttackResults, MetricOptions
from safecompress.attacks.robustness import InputBox, check_continuous
from safecompress.data.splits import DataSplits
from safecompress.inference import frozen_eval, model_logits, resolve_device


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (images: N×C×H×W); 0 for flat feature rows."""
    if x.dim() < 4:
        return x.new_zeros(())
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def invert_classes(
    model: nn.Module,
    shape: tuple[int, ...],
    num_classes: int,
    *,
    box: InputBox = InputBox(),
    restarts: int = 4,
    steps: int = 150,
    lr: float = 0.05,
    tv_weight: float = 0.1,
    l2_weight: float = 0.01,
    start_scale: float = 0.1,
    seed: int = 0,
    device: Any = "cpu",
) -> torch.Tensor:
    """``restarts`` reconstructions per class, (num_classes, restarts, *shape), optimised all at once."""
    generator = torch.Generator().manual_seed(seed)
    start = start_scale * torch.randn((num_classes * restarts, *shape), generator=generator)
    x = box.clip(start).to(device).requires_grad_(True)
    target = torch.arange(num_classes, device=device).repeat_interleave(restarts)
    optimizer = torch.optim.Adam([x], lr=lr)
    with frozen_eval(model):
        for _ in range(steps):
            loss = F.cross_entropy(model_logits(model, x).float(), target) + tv_weight * total_variation(x) + l2_weight * x.pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                x.copy_(box.clip(x))
    return x.detach().reshape(num_classes, restarts, *shape)


def inversion_attack(
    model: nn.Module,
    data: DataSplits,
    *,
    box: Optional[InputBox] = None,
    restarts: int = 4,
    steps: int = 150,
    lr: float = 0.05,
    tv_weight: float = 0.1,
    l2_weight: float = 0.01,
    seed: int = 0,
    device: Any = "auto",
    options: Optional[MetricOptions] = None,
) -> AttackResults:
    """Class-representative inversion scored on every member against every non-member (see the module)."""
    check_continuous(data.members.inputs)
    device = resolve_device(device)
    model.to(device)
    box = box if box is not None else InputBox.for_data(data)
    shape = tuple(data.members.inputs.shape[1:])
    inverted = invert_classes(model, shape, data.num_classes, box=box, restarts=restarts, steps=steps, lr=lr, tv_weight=tv_weight, l2_weight=l2_weight, seed=seed, device=device)
    flat = F.normalize(inverted.reshape(data.num_classes, restarts, -1).float().cpu(), dim=2)
    rows = [data.members, data.non_members]
    inputs = torch.cat([split.inputs for split in rows]).reshape(sum(len(s) for s in rows), -1)
    labels = torch.cat([split.labels for split in rows]).long()
    scores = np.concatenate(  # in chunks: rows × restarts × input size can be large for big images
        [torch.einsum("nd,nkd->nk", F.normalize(inputs[i : i + 256].float(), dim=1), flat[labels[i : i + 256]]).max(dim=1).values.numpy() for i in range(0, len(labels), 256)]
    )
    membership = np.concatenate([np.ones(len(data.members), dtype=np.int8), np.zeros(len(data.non_members), dtype=np.int8)])
    confidence = F.softmax(model_logits(model, inverted.reshape(-1, *shape).to(device)).float(), dim=1).detach().cpu()
    target_confidence = confidence[torch.arange(len(confidence)), torch.arange(data.num_classes).repeat_interleave(restarts)]
    return AttackResults.from_scores(
        "inversion",
        scores,
        membership,
        labels=labels.numpy(),
        options=options,
        tier=1,
        extra={
            "restarts": restarts,
            "steps": steps,
            "prior": {"total_variation": tv_weight, "l2": l2_weight},
            "mean_target_confidence": float(target_confidence.mean()),
            "reconstructions": int(len(confidence)),
        },
    )
