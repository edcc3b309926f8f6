"""DP-SGD training of a sparse model with fixed masks, through Opacus: the defence with a guarantee,
which the benchmark puts on the same privacy–utility frontier as SafeCompress.

Opacus computes per-sample gradients, clips each to ``max_grad_norm``, adds Gaussian noise calibrated
by its accountant to reach ``(epsilon, delta)`` over the whole run, and samples batches by Poisson
sampling. Pruned positions take no part: their per-sample gradients are zeroed before clipping (so
the clipping budget is spent on live weights only) and the masks are re-applied after every private
step (noise there is discarded — post-processing, which costs no privacy).

The guarantee covers the weights given the masks. Masks cut from a parent trained on the same data
are themselves a (small) function of it; the benchmark says so where it reports ε.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from safecompress.data.splits import Split
from safecompress.errors import UsageError
from safecompress.inference import resolve_device
from safecompress.training import TrainRecipe, seeded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrivacyBudget:
    """The ``(epsilon, delta)`` a run may spend; ``delta`` None means 1/n for n training rows."""

    epsilon: float
    delta: Optional[float] = None
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise UsageError(f"the privacy budget epsilon must be a positive number, got {self.epsilon!r}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise UsageError(f"delta must lie in (0, 1), got {self.delta!r}")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise UsageError(f"max_grad_norm must be a positive number, got {self.max_grad_norm!r}")


@dataclass(frozen=True)
class PrivateTraining:
    """What a private run spent, as Opacus's accountant reports it."""

    epsilon: float
    delta: float
    target_epsilon: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    accountant: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def require_opacus() -> Any:
    """The ``opacus`` module, or a one-line usage error naming the extra that installs it."""
    try:
        import opacus
    except ImportError:
        raise UsageError("DP-SGD needs Opacus: pip install 'safecompress[dp]'") from None
    return opacus


def fit_private(
    model: nn.Module,
    split: Split,
    recipe: TrainRecipe,
    budget: PrivacyBudget,
    *,
    masks: Optional[Mapping[str, torch.Tensor]] = None,
    seed: int,
    device: torch.device | str | None = "auto",
    accountant: str = "rdp",
) -> PrivateTraining:
    """Train ``model`` in place on ``split`` by DP-SGD with ``recipe``'s optimizer, epochs and expected
    batch size, spending ``budget``; weights named in ``masks`` stay zero outside their mask.
    Poisson sampling and noise draw from generators seeded by ``seed``, so a run is reproducible."""
    opacus = require_opacus()
    if isinstance(split.inputs, Mapping):
        raise UsageError("DP-SGD here supports models with one tensor input (not dict inputs)")
    device = resolve_device(device)
    n = len(split)
    delta = budget.delta if budget.delta is not None else 1.0 / n
    model.to(device).train()
    params = dict(model.named_parameters())
    unknown = sorted(set(masks or {}) - set(params))
    if unknown:
        raise UsageError(f"masks name parameters the model does not have: {', '.join(unknown)}")
    masked = [(params[name], mask.to(device, params[name].dtype)) for name, mask in (masks or {}).items()]
    _apply(masked)

    dataset = torch.utils.data.TensorDataset(split.inputs, split.labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe.batch_size, generator=torch.Generator().manual_seed(seed))
    optimizer = recipe.make_optimizer(model.parameters())
    with warnings.catch_warnings():  # seeded generators instead of a secure RNG: reproducible runs, on purpose
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = opacus.PrivacyEngine(accountant=accountant)
    private_model, private_optimizer, private_loader = engine.make_private_with_epsilon(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        target_epsilon=budget.epsilon,
        target_delta=delta,
        epochs=recipe.epochs,
        max_grad_norm=budget.max_grad_norm,
        noise_generator=torch.Generator(device=device).manual_seed(seed + 1),
    )
    augment_rng = torch.Generator(device=device).manual_seed(seed + 2) if recipe.augment is not None else None
    steps = 0
    with seeded(seed, device), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")  # image inputs need no gradient
        for _ in range(recipe.epochs):
            for x, y in private_loader:
                if len(y) == 0:
                    continue  # Poisson sampling can draw an empty batch; the accountant still counted it
                x, y = x.to(device), y.to(device)
                if recipe.augment is not None:
                    x = recipe.augment(x, augment_rng)  # type: ignore[arg-type]
                private_optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(private_model(x), y, label_smoothing=recipe.label_smoothing).backward()
                for param, mask in masked:
                    if getattr(param, "grad_sample", None) is not None:
                        param.grad_sample = param.grad_sample * mask  # clip on live weights only
                private_optimizer.step()
                _apply(masked)
                steps += 1
    spent = float(engine.get_epsilon(delta))
    private_model.cleanup()  # the caller gets its own module back, without Opacus's hooks
    model.eval()
    result = PrivateTraining(spent, delta, budget.epsilon, float(private_optimizer.noise_multiplier), budget.max_grad_norm, 1.0 / len(loader), steps, accountant)
    log.debug("DP-SGD: %d steps, noise multiplier %.3f, epsilon %.3f at delta %.2e", steps, result.noise_multiplier, spent, delta)
    return result


def _apply(masked: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for param, mask in masked:
            param.mul_(mask)
