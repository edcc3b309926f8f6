"""One small, deterministic training loop shared by reference models and the compression driver.

Reference models must follow the target's own recipe (METHOD.md §5): when both are trained by
:func:`fit` from the same :class:`TrainRecipe`, "same recipe" is a fact, not a hope. The recipe is
plain data with a stable :meth:`TrainRecipe.describe`, so it can be hashed into cache keys.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from safecompress.data.splits import Inputs, Split
from safecompress.inference import model_logits, resolve_device

log = logging.getLogger(__name__)

Augment = Callable[[Inputs, torch.Generator], Inputs]
StepCallback = Callable[[int, nn.Module, torch.optim.Optimizer, torch.Tensor], None]


@dataclass(frozen=True)
class TrainRecipe:
    """Epochs, batch size and optimizer settings of one training run.

    ``augment(inputs, generator)`` transforms a training batch on the device (draw randomness from
    ``generator`` to stay deterministic). It is applied in training only: membership queries always
    use un-augmented inputs for members and non-members alike (METHOD.md §4).
    """

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: Optional[Augment] = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', not {self.optimizer!r}")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"invalid recipe: epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")

    def make_optimizer(self, parameters: Any) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.AdamW(parameters, lr=self.lr, weight_decay=self.weight_decay)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for cache keys and reports; ``augment`` is named by its qualified name."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
            "augment": None if self.augment is None else callable_name(self.augment),
        }


def callable_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function, with a ``functools.partial``'s bound arguments spelled out."""
    args = getattr(fn, "args", None)
    inner = getattr(fn, "func", None)
    if inner is not None and args is not None:
        keywords = getattr(fn, "keywords", {}) or {}
        bound = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(keywords.items())])
        return f"{callable_name(inner)}({bound})"
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{name}"


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNGs (initialisation, dropout) inside the block and restore them after,
    so seeding one training run does not change the randomness of the caller's code."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _take(inputs: Inputs, index: torch.Tensor, device: torch.device) -> Inputs:
    if isinstance(inputs, Mapping):
        return {k: v[index].to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs[index].to(device, non_blocking=True)


def fit(
    model: nn.Module,
    split: Split,
    recipe: TrainRecipe,
    *,
    seed: int,
    device: torch.device | str | None = "auto",
    step_callback: Optional[StepCallback] = None,
) -> nn.Module:
    """Train ``model`` on ``split`` by ``recipe`` with cross-entropy; returns it on ``device`` in eval mode.

    Shuffling uses its own seeded generator and dropout runs under :func:`seeded`, so the same
    (model init, data, recipe, seed) gives the same weights on the same hardware.
    ``step_callback(step, model, optimizer, loss)`` runs after every optimizer step — where a sparse
    engine re-applies its masks; ``loss`` is a detached tensor (no device sync is forced).
    """
    device = resolve_device(device)
    model.to(device).train()
    optimizer = recipe.make_optimizer(model.parameters())
    shuffle = torch.Generator().manual_seed(seed)
    augment_rng = torch.Generator(device=device).manual_seed(seed + 1) if recipe.augment is not None else None
    n = len(split)
    step = 0
    with seeded(seed, device):
        for _ in range(recipe.epochs):
            order = torch.randperm(n, generator=shuffle)
            for start in range(0, n, recipe.batch_size):
                index = order[start : start + recipe.batch_size]
                if index.numel() == 1 and n > 1:
                    continue  # a one-sample tail batch breaks BatchNorm and adds nothing
                x = _take(split.inputs, index, device)
                y = split.labels[index].to(device, non_blocking=True)
                if recipe.augment is not None:
                    x = recipe.augment(x, augment_rng)  # type: ignore[arg-type]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model_logits(model, x), y, label_smoothing=recipe.label_smoothing)
                loss.backward()
                optimizer.step()
                step += 1
                if step_callback is not None:
                    step_callback(step, model, optimizer, loss.detach())
    log.debug("trained %s for %d steps on %d samples (seed %d)", type(model).__name__, step, n, seed)
    return model.eval()
