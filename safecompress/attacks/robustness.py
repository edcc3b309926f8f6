"""Adversarial robustness as a safety measurement: accuracy under an L∞ evasion attack (PGD, FGSM).

Threat model: an attacker who knows the weights (white-box) perturbs each input by at most ε per
input unit (in pixel units for images: ε = 0.1 is a tenth of the [0, 1] pixel range) to change the
prediction. PGD (Madry et al. 2018) takes ``steps`` signed-gradient steps of ``step_size`` from a
uniform random start and projects back onto the ε-ball and the valid input range after each; FGSM
(Goodfellow et al. 2015) is one step of size ε from the clean input, the cheap proxy for in-loop
tests. Robust accuracy is a rate over rows, so it gets a Clopper–Pearson interval, and two models
evaluated on the same rows are compared by a paired difference (:func:`paired_accuracy_difference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safecompress.data.splits import DataSplits, Split
from safecompress.errors import UsageError
from safecompress.inference import frozen_eval, model_logits, resolve_device
from safecompress.metrics import Interval, clopper_pearson

DEFAULT_EPS = 0.1
DEFAULT_PGD_STEPS = 10


@dataclass(frozen=True)
class InputBox:
    """How ε in input units maps onto the model's (normalised) inputs, and the valid range there."""

    scale: float = 1.0  # model-input units per input unit (1 / std for normalised images)
    low: Optional[float] = None
    high: Optional[float] = None

    @classmethod
    def for_data(cls, data: DataSplits) -> "InputBox":
        """Images normalised as (pixel − mean) / std (the registered image datasets record both):
        ε is in pixel units and perturbed inputs stay valid images. Other continuous inputs: ε in
        their own units, unclipped."""
        norm = data.extra.get("normalization") if isinstance(data.extra, Mapping) else None
        if isinstance(norm, Mapping) and "mean" in norm and "std" in norm:
            mean, std = float(norm["mean"]), float(norm["std"])
            return cls(scale=1.0 / std, low=(0.0 - mean) / std, high=(1.0 - mean) / std)
        return cls()

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        if self.low is None or self.high is None:
            return x
        return x.clamp(self.low, self.high)


def check_continuous(inputs: Any) -> None:
    """Refuse inputs an L∞ perturbation cannot apply to (token ids, dicts of them)."""
    if isinstance(inputs, Mapping) or not torch.is_floating_point(inputs):
        raise UsageError("the robustness attacks perturb continuous inputs (images, features); token ids are discrete, so PGD/FGSM do not apply to this model's data")


def perturb(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, step_size: float, box: InputBox, random_start: bool, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """L∞ adversarial examples for ``x`` (model inputs), ε and the step in input units.

    Gradients flow to the inputs only; the model's own gradients are left untouched, so a remedy can
    call this in the middle of a training step."""
    radius, step = eps * box.scale, step_size * box.scale
    with frozen_eval(model):
        adv = x.detach().clone()
        if random_start:
            noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
            adv = box.clip(adv + (2 * noise - 1) * radius)
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model_logits(model, adv).float(), y)
            (gradient,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step * gradient.sign()
            adv = box.clip(torch.min(torch.max(adv, x - radius), x + radius))
    return adv.detach()


@dataclass(frozen=True)
class RobustnessResults:
    """Clean and robust accuracy of one model on one split, with the per-row outcomes behind them."""

    attack: str
    clean_accuracy: Interval
    robust_accuracy: Interval
    clean_correct: np.ndarray
    robust_correct: np.ndarray
    eps: float
    steps: int
    step_size: float
    split: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.robust_correct)

    def summary(self) -> str:
        return (
            f"{self.attack}: robust accuracy {self.robust_accuracy.format(percent=True)} under L∞ ε = {self.eps:g} "
            f"({self.steps} step(s) of {self.step_size:g}), clean {self.clean_accuracy.format(percent=True)}, on {self.rows} {self.split} rows"
        )

    def to_dict(self, include_rows: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attack": self.attack,
            "kind": "robustness",
            "clean_accuracy": self.clean_accuracy.to_dict(),
            "robust_accuracy": self.robust_accuracy.to_dict(),
            "eps": self.eps,
            "steps": self.steps,
            "step_size": self.step_size,
            "rows": self.rows,
            "split": self.split,
            "extra": self.extra,
        }
        if include_rows:
            out["clean_correct"] = self.clean_correct.astype(int).tolist()
            out["robust_correct"] = self.robust_correct.astype(int).tolist()
        return out


def robust_accuracy(
    model: nn.Module,
    split: Split,
    *,
    box: InputBox = InputBox(),
    eps: float = DEFAULT_EPS,
    steps: int = DEFAULT_PGD_STEPS,
    step_size: Optional[float] = None,
    random_start: bool = True,
    seed: int = 0,
    device: Any = "auto",
    batch_size: int = 256,
    attack: str = "pgd",
) -> RobustnessResults:
    """Accuracy of ``model`` on ``split`` under L∞ PGD (``steps`` ≥ 1; ``step_size`` defaults to
    2.5·ε/steps, Madry et al.'s rule). ``steps=1, step_size=eps, random_start=False`` is FGSM."""
    if not (eps >= 0 and np.isfinite(eps)):
        raise UsageError(f"eps must be a finite number ≥ 0, got {eps!r}")
    if steps < 1:
        raise UsageError(f"steps must be at least 1, got {steps!r}")
    check_continuous(split.inputs)
    step = float(step_size) if step_size is not None else 2.5 * eps / steps
    device = resolve_device(device)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    clean, robust = [], []
    for x, y in split.batches(batch_size, device):
        with torch.no_grad():
            model.eval()
            clean.append((model_logits(model, x).argmax(1) == y).cpu())
        adv = perturb(model, x, y, eps=eps, steps=steps, step_size=step, box=box, random_start=random_start, generator=generator)
        with torch.no_grad():
            robust.append((model_logits(model, adv).argmax(1) == y).cpu())
    model.eval()
    clean_correct = torch.cat(clean).numpy() if clean else np.zeros(0, dtype=bool)
    robust_correct = torch.cat(robust).numpy() if robust else np.zeros(0, dtype=bool)
    return RobustnessResults(
        attack=attack,
        clean_accuracy=clopper_pearson(int(clean_correct.sum()), len(clean_correct)),
        robust_accuracy=clopper_pearson(int(robust_correct.sum()), len(robust_correct)),
        clean_correct=clean_correct,
        robust_correct=robust_correct,
        eps=float(eps),
        steps=int(steps),
        step_size=step,
        split=split.name,
        extra={"random_start": random_start, "seed": seed, "input_scale": box.scale},
    )


def fgsm_accuracy(model: nn.Module, split: Split, *, box: InputBox = InputBox(), eps: float = DEFAULT_EPS, device: Any = "auto", batch_size: int = 256, seed: int = 0) -> RobustnessResults:
    """Accuracy under FGSM: one signed-gradient step of size ε, no random start (the cheap proxy)."""
    return robust_accuracy(model, split, box=box, eps=eps, steps=1, step_size=eps, random_start=False, device=device, batch_size=batch_size, seed=seed, attack="fgsm")


def paired_accuracy_difference(correct_a: np.ndarray, correct_b: np.ndarray, level: float = 0.95) -> Interval:
    """accuracy(a) − accuracy(b) on the same rows, with a Wald interval for paired proportions
    (its variance comes from the discordant rows only, so two models that agree on most rows are
    compared far more tightly than two independent intervals would allow)."""
    from scipy.stats import norm

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired outcomes need two equal, non-empty rows of outcomes, got {a.shape} and {b.shape}")
    n = len(a)
    only_a, only_b = float(np.sum(a & ~b)), float(np.sum(~a & b))
    difference = (only_a - only_b) / n
    variance = max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0) / n**2
    half = float(norm.ppf(0.5 + level / 2)) * variance**0.5
    return Interval(difference, max(difference - half, -1.0), min(difference + half, 1.0), level, "paired Wald")


def pgd_attack(
    model: nn.Module,
    data: DataSplits,
    *,
    eps: float = DEFAULT_EPS,
    steps: int = DEFAULT_PGD_STEPS,
    step_size: Optional[float] = None,
    split: str = "test",
    seed: int = 0,
    device: Any = "auto",
) -> RobustnessResults:
    """Registry entry ``pgd``: robust accuracy under L∞ PGD on a held-out split (default ``test``)."""
    return robust_accuracy(model, _split(data, split), box=InputBox.for_data(data), eps=eps, steps=steps, step_size=step_size, seed=seed, device=device)


def fgsm_attack(model: nn.Module, data: DataSplits, *, eps: float = DEFAULT_EPS, split: str = "test", seed: int = 0, device: Any = "auto") -> RobustnessResults:
    """Registry entry ``fgsm``: robust accuracy under one FGSM step (the cheap proxy of ``pgd``)."""
    return fgsm_accuracy(model, _split(data, split), box=InputBox.for_data(data), eps=eps, seed=seed, device=device)


def _split(data: DataSplits, name: str) -> Split:
    if name not in ("members", "non_members", "population", "test"):
        raise UsageError(f"unknown split {name!r}: use members, non_members, population or test")
    return getattr(data, name)
