"""RelaxLoss behaves as Chen et al. (ICLR 2022) define it: descend |CE − α| (gradient ascent below α),
and, while the loss is below α, ascend on correctly classified samples and flatten the posteriors of
the misclassified ones; as a remedy term, weight 1 makes the whole loss RelaxLoss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from safecompress.remedies import RelaxLoss, RemedyContext

CLASSES = 5


def remedy(**options: float) -> RelaxLoss:
    return RelaxLoss(RemedyContext(num_classes=CLASSES, device=torch.device("cpu"), options=dict(options)))


def confident(n: int = 8, margin: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that classify every sample correctly with a low loss (well below α = 0.5)."""
    labels = torch.arange(n) % CLASSES
    logits = torch.zeros(n, CLASSES)
    logits[torch.arange(n), labels] = margin
    return logits, labels


def grad_of(fn, logits: torch.Tensor) -> torch.Tensor:
    logits = logits.clone().requires_grad_(True)
    fn(logits).backward()
    return logits.grad


def test_odd_steps_ascend_below_alpha_and_descend_above() -> None:
    logits, labels = confident()
    ce_grad = grad_of(lambda z: F.cross_entropy(z, labels), logits)
    below = remedy(alpha=0.5)
    assert F.cross_entropy(logits, labels) < 0.5
    assert torch.allclose(grad_of(lambda z: below.relaxed(z, labels), logits), -ce_grad)  # gradient ascent
    high = torch.zeros_like(logits)  # uniform posteriors: CE = log 5 > α
    above = remedy(alpha=0.5)
    assert torch.allclose(grad_of(lambda z: above.relaxed(z, labels), high), grad_of(lambda z: F.cross_entropy(z, labels), high))


def test_even_steps_are_plain_descent_while_the_loss_is_above_alpha() -> None:
    logits, labels = torch.zeros(6, CLASSES), torch.arange(6) % CLASSES
    relax = remedy(alpha=0.5)
    relax.relaxed(logits, labels)  # the odd step
    assert torch.allclose(relax.relaxed(logits, labels), F.cross_entropy(logits, labels))


def test_even_steps_below_alpha_ascend_on_correct_and_flatten_misclassified() -> None:
    logits, labels = confident(n=16)
    wrong = torch.tensor([[1.0, 3.0, 0.0, 0.5, 2.0]])  # true class 0, predicted 1: misclassified, uneven
    logits, labels = torch.cat([logits, wrong]), torch.cat([labels, torch.tensor([0])])
    relax = remedy(alpha=0.5)
    relax.calls = 1  # the next call is an even step
    assert F.cross_entropy(logits, labels) < 0.5
    grad = grad_of(lambda z: relax.relaxed(z, labels), logits)
    per_sample_ce_grad = grad_of(lambda z: F.cross_entropy(z, labels, reduction="sum"), logits) / len(labels)
    assert torch.allclose(grad[:16], -per_sample_ce_grad[:16], atol=1e-6)  # correct samples: gradient ascent
    n = len(labels)

    def soft_ce(z: torch.Tensor) -> torch.Tensor:  # cross-entropy to the flattened posterior
        p = F.softmax(z, dim=1)
        rest = (1 - p[0, 0]) / (CLASSES - 1)
        target = torch.stack([p[0, 0], rest, rest, rest, rest])
        return -(target * F.log_softmax(z, dim=1)[0]).sum()

    expected = grad_of(lambda z: (soft_ce(z) - F.cross_entropy(z, torch.tensor([0]))) / n, wrong)
    assert torch.allclose(grad[16:], expected, atol=1e-6)  # misclassified: soft CE to the flattened target, minus CE
    flattened = wrong - 1.0 * grad_of(soft_ce, wrong)  # the soft-CE part alone evens the other classes out
    others = lambda z: F.softmax(z, dim=1)[0, 1:]  # noqa: E731
    assert others(flattened).std() < 0.9 * others(wrong).std()


def test_soft_target_caps_the_true_class_and_spreads_the_rest() -> None:
    logits, labels = torch.tensor([[0.0, 3.0, 0.0, 0.0, 0.0]]), torch.tensor([0])
    capped = remedy(alpha=5.0, upper=0.1)
    capped.calls = 1
    probabilities = F.softmax(logits, dim=1)
    target = probabilities[0, 0].clamp(max=0.1)
    expected = torch.full((CLASSES,), float((1 - target) / (CLASSES - 1)))
    expected[0] = target
    soft_ce = -(expected * F.log_softmax(logits, dim=1)).sum()
    assert capped.relaxed(logits, labels) == pytest.approx(float(soft_ce - F.cross_entropy(logits, labels)), abs=1e-6)


def test_as_a_remedy_term_weight_one_makes_the_loss_relaxloss() -> None:
    logits, labels = confident()
    term, reference = remedy(alpha=0.5), remedy(alpha=0.5)
    for _ in range(4):  # both alternate in step
        ce = F.cross_entropy(logits, labels)
        assert ce + 1.0 * term.loss(None, None, logits, labels) == pytest.approx(float(reference.relaxed(logits, labels)), abs=1e-6)


def test_alternation_resumes_from_its_state_and_bad_options_are_refused() -> None:
    relax = remedy()
    relax.relaxed(*confident())
    resumed = remedy()
    resumed.load_state_dict(relax.state_dict())
    assert resumed.calls == 1
    for options in ({"alpha": 0.0}, {"upper": 0.0}, {"upper": 1.5}):
        with pytest.raises(ValueError):
            remedy(**options)
