"""Remedy loss terms do what their docstrings say (signs and rates), on real tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from safecompress.remedies import BUILTIN_REMEDIES, ConfidencePenalty, Flooding, RemedyContext, entropy


def context(**options) -> RemedyContext:
    return RemedyContext(num_classes=4, device=torch.device("cpu"), options=options)


def batch(scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(4, (16,), generator=generator)
    logits = torch.randn(16, 4, generator=generator) + scale * F.one_hot(labels, 4)
    return logits.requires_grad_(True), labels


@pytest.mark.parametrize("weight, rate", [(0.25, 0.5), (0.5, 0.0), (1.0, -1.0)])
def test_flooding_below_the_level_scales_the_descent_by_one_minus_two_w(weight: float, rate: float) -> None:
    remedy = Flooding(context(level=0.5))
    logits, labels = batch(scale=6.0)  # confident: the batch loss is below the level
    task = F.cross_entropy(logits, labels)
    assert float(task.detach()) < 0.5
    (task_grad,) = torch.autograd.grad(task, logits, retain_graph=True)
    (total_grad,) = torch.autograd.grad(task + weight * remedy.loss(None, None, logits, labels), logits)
    assert torch.allclose(total_grad, rate * task_grad, atol=1e-6)


def test_flooding_is_inert_above_the_level_and_rejects_a_bad_level() -> None:
    remedy = Flooding(context(level=0.05))
    logits, labels = batch(scale=0.0)  # unsure: loss ≈ ln 4 > level
    assert float(remedy.loss(None, None, logits, labels).detach()) == 0.0
    assert (remedy.base_weight, remedy.max_weight) == (0.25, 1.0)
    with pytest.raises(ValueError, match="positive level"):
        Flooding(context(level=0.0))


def test_confidence_penalty_rewards_entropy() -> None:
    logits, labels = batch(scale=3.0)
    (grad,) = torch.autograd.grad(ConfidencePenalty(context()).loss(None, None, logits, labels), logits)
    stepped = logits.detach() - 0.1 * grad
    assert float(entropy(stepped).mean()) > float(entropy(logits.detach()).mean())


def test_builtin_remedies_are_registered_by_name() -> None:
    assert {"confidence_penalty", "label_smoothing", "adversarial_regularization", "flooding"} <= set(BUILTIN_REMEDIES)
    assert all(factory.name == name for name, factory in BUILTIN_REMEDIES.items())
