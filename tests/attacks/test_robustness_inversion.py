"""Attacks beyond black-box membership: PGD/FGSM robust accuracy, the adversarial-training remedy that
raises it, and class-representative model inversion scored as members against non-members."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from safecompress.attacks import BUILTIN_ATTACKS, run_attack
from safecompress.attacks.inversion import inversion_attack
from safecompress.attacks.robustness import InputBox, RobustnessResults, fgsm_accuracy, paired_accuracy_difference, perturb, robust_accuracy
from safecompress.data import fashion_mnist_embedded
from safecompress.errors import UsageError
from safecompress.models import small_cnn
from safecompress.remedies import AdversarialTraining, RemedyContext
from safecompress.training import TrainRecipe, fit, seeded


@pytest.fixture(scope="module")
def fashion():
    return fashion_mnist_embedded(members=500, non_members=500, population=500, test=500, seed=0)


def _train(data, adversarial_weight: float) -> nn.Module:
    """8 epochs of the SmallCNN on 500 members, with the adversarial-training term at ``adversarial_weight``."""
    with seeded(0, torch.device("cpu")):
        model = small_cnn(10)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    remedy = AdversarialTraining(RemedyContext(num_classes=10, device=torch.device("cpu"), input_box=InputBox.for_data(data)))
    order = torch.Generator().manual_seed(0)
    for _ in range(8):
        shuffled = data.members.subset(torch.randperm(len(data.members), generator=order).numpy())
        for x, y in shuffled.batches(64):
            model.train()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if adversarial_weight:
                loss = loss + adversarial_weight * remedy.loss(model, x, logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def standard(fashion):
    return _train(fashion, 0.0)


def test_input_box_maps_pixel_eps_onto_normalised_inputs(fashion):
    box = InputBox.for_data(fashion)
    norm = fashion.extra["normalization"]
    assert box.scale == pytest.approx(1 / norm["std"]) and box.low == pytest.approx(-norm["mean"] / norm["std"])
    assert fashion.members.inputs.min() >= box.low - 1e-6 and fashion.members.inputs.max() <= box.high + 1e-6


def test_pgd_stays_inside_the_eps_ball_and_the_valid_range(fashion, standard):
    box = InputBox.for_data(fashion)
    x, y = next(fashion.test.batches(64))
    before = [None if p.grad is None else p.grad.clone() for p in standard.parameters()]
    adversarial = perturb(standard, x, y, eps=0.1, steps=5, step_size=0.025, box=box, random_start=True, generator=torch.Generator().manual_seed(0))
    assert (adversarial - x).abs().max() <= 0.1 * box.scale + 1e-5
    assert adversarial.min() >= box.low - 1e-6 and adversarial.max() <= box.high + 1e-6
    after = [p.grad for p in standard.parameters()]
    assert all((b is None and a is None) or torch.equal(a, b) for a, b in zip(after, before))  # only the inputs were differentiated
    assert all(p.requires_grad for p in standard.parameters()) and not standard.training


def test_pgd_is_at_least_as_strong_as_fgsm_and_eps_zero_changes_nothing(fashion, standard):
    box = InputBox.for_data(fashion)
    pgd = robust_accuracy(standard, fashion.test, box=box, eps=0.1)
    fgsm = fgsm_accuracy(standard, fashion.test, box=box, eps=0.1)
    assert pgd.robust_accuracy.value < fgsm.robust_accuracy.value < pgd.clean_accuracy.value
    assert pgd.clean_accuracy.value > 0.7 and pgd.robust_accuracy.value < 0.4  # a standard model is brittle at ε = 0.1
    untouched = robust_accuracy(standard, fashion.test, box=box, eps=0.0, steps=1)
    assert np.array_equal(untouched.robust_correct, untouched.clean_correct)
    assert pgd.robust_accuracy.low <= pgd.robust_accuracy.value <= pgd.robust_accuracy.high


def test_adversarial_training_raises_robust_accuracy(fashion, standard):
    """The known-robust model (PGD-AT at weight 1) against the known-vulnerable one, same rows."""
    box = InputBox.for_data(fashion)
    robust_model = _train(fashion, 1.0)
    brittle = robust_accuracy(standard, fashion.test, box=box, eps=0.1)
    robust = robust_accuracy(robust_model, fashion.test, box=box, eps=0.1)
    gain = paired_accuracy_difference(robust.robust_correct, brittle.robust_correct)
    assert gain.value > 0.15 and gain.low > 0.05  # measured: 28.0 % -> 52.6 %
    assert robust.clean_accuracy.value > brittle.clean_accuracy.value - 0.05


def test_paired_difference_uses_the_discordant_rows():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
    b = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
    diff = paired_accuracy_difference(a, b)
    only_a, only_b, n = 2, 1, 10
    half = 1.959964 * np.sqrt(only_a + only_b - (only_a - only_b) ** 2 / n) / n
    assert diff.value == pytest.approx(0.1) and diff.low == pytest.approx(0.1 - half, abs=1e-5) and diff.high == pytest.approx(0.1 + half, abs=1e-5)
    assert paired_accuracy_difference(a, a).width == 0.0
    with pytest.raises(ValueError):
        paired_accuracy_difference(a, b[:5])


def _linear(data, split):
    with seeded(0, torch.device("cpu")):
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    return fit(model, split, TrainRecipe(epochs=200, batch_size=50, lr=1e-3), seed=0, device="cpu").eval()


def test_inversion_recovers_the_members_of_a_memorising_model_and_not_of_a_null_one():
    """A linear classifier's weights lie in the span of its training images, so its inversions
    resemble its members: the known-vulnerable case. The same classifier trained on other rows of
    the distribution is the null one: its inversions tell members from non-members at chance."""
    data = fashion_mnist_embedded(members=200, non_members=200, population=1000, test=200, seed=0)
    vulnerable = inversion_attack(_linear(data, data.members), data, seed=0, device="cpu")
    null = inversion_attack(_linear(data, data.population.subset(np.arange(200))), data, seed=0, device="cpu")
    assert vulnerable.auc.low > 0.55  # measured: 0.633 [0.578, 0.688]
    assert null.auc.low < 0.5 < null.auc.high  # measured: 0.547 [0.490, 0.600]
    assert vulnerable.auc.value - null.auc.value > 0.05
    assert vulnerable.extra["mean_target_confidence"] > 0.9 and vulnerable.extra["reconstructions"] == 40


def test_the_registry_runs_them_by_name(fashion, standard):
    for name in ("pgd", "fgsm", "inversion"):
        assert BUILTIN_ATTACKS[name].queries_model
    pgd = run_attack("pgd", standard, fashion, device="cpu", eps=0.05, steps=3)
    assert isinstance(pgd, RobustnessResults) and pgd.eps == 0.05 and pgd.steps == 3 and pgd.rows == len(fashion.test)
    assert pgd.to_dict()["kind"] == "robustness" and "robust accuracy" in pgd.summary()
    inverted = run_attack("inversion", standard, fashion, device="cpu", steps=20)
    assert inverted.attack == "inversion" and inverted.n_members == len(fashion.members)


def test_discrete_inputs_are_refused():
    from safecompress.data.splits import Split

    tokens = Split({"input_ids": torch.zeros(4, 8, dtype=torch.long)}, torch.zeros(4, dtype=torch.long), np.arange(4))
    with pytest.raises(UsageError, match="token ids are discrete"):
        robust_accuracy(nn.Linear(8, 2), tokens)
