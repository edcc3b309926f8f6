"""Adversarial regularisation against a black-box, a white-box or both attackers (TSE 2024's BMIA-,
WMIA- and MMIA-SafeCompress)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from safecompress.attacks.wrappers import last_layer_gradients
from safecompress.data import fashion_mnist_embedded
from safecompress.models import small_cnn
from safecompress.remedies import AdversarialRegularization, RemedyContext, head_features
from safecompress.training import seeded


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_embedded(members=200, non_members=200, population=400, test=200, seed=0)


def _model():
    with seeded(0, torch.device("cpu")):
        return small_cnn(10)


def _remedy(data, attacker: str) -> AdversarialRegularization:
    return AdversarialRegularization(RemedyContext(num_classes=10, device=torch.device("cpu"), reference=data.population, seed=0, options={"attacker": attacker}))


def test_the_closed_form_last_layer_gradient_equals_torch_func(data):
    model = _model().eval()
    split = data.members.subset(list(range(32)))
    x, y = next(split.batches(32))
    with torch.no_grad():
        _, per_sample_loss, gradient = head_features(model, x, y)
    expected = torch.from_numpy(last_layer_gradients(model, split, device="cpu"))
    assert gradient.shape == expected.shape == (32, 10 * 128 + 10)
    assert torch.allclose(gradient, expected, atol=1e-6)
    assert torch.allclose(per_sample_loss, F.cross_entropy(model(x), y, reduction="none"), atol=1e-6)


@pytest.mark.parametrize("attacker", ["white", "both"])
def test_the_classifier_is_trained_against_the_chosen_attackers(data, attacker):
    model = _model()
    remedy = _remedy(data, attacker)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    head = model.classifier[-1].weight
    for x, y in data.members.batches(50):
        model.train()
        logits = model(x)
        term = remedy.loss(model, x, logits, y)
        optimizer.zero_grad()
        term.backward()
        assert head.grad is not None and head.grad.abs().sum() > 0  # the term reaches the classifier
        optimizer.step()
    assert remedy.white is not None and remedy.white.gradient_branch[0].in_features == 10 * 128 + 10
    assert all(p.grad is not None for p in remedy.white.parameters())  # the white attacker trained
    assert (remedy.attacker.fusion[0].weight.grad is not None) == (attacker == "both")
    assert model.training  # left as the loop had it

    state = copy.deepcopy(remedy.state_dict())  # as a checkpoint file holds it (the live dict aliases Adam's moments)
    resumed = _remedy(data, attacker)
    resumed.load_state_dict(state)
    for a, b in zip(remedy.white.parameters(), resumed.white.parameters()):
        assert torch.equal(a, b)
    x, y = next(data.members.batches(50))
    with torch.no_grad():
        logits = model(x)
    torch.manual_seed(0)
    first = remedy.loss(model, x, logits, y)
    torch.manual_seed(0)
    again = resumed.loss(model, x, logits, y)
    assert torch.equal(first, again)  # a resumed adversary continues identically


def test_black_is_the_default_and_a_bad_kind_is_refused(data):
    assert _remedy(data, "black").kind == AdversarialRegularization(RemedyContext(num_classes=10, device=torch.device("cpu"), reference=data.population)).kind == "black"
    with pytest.raises(ValueError, match="attacker must be one of black, white, both"):
        _remedy(data, "grey")
