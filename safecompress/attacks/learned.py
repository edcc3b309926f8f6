"""Tier 1: the learned attacks of Nasr et al. (2018, 2019), trained without touching evaluation data.

The published code picked the best of 100 attack epochs by its score on the evaluation set; here
the attack model trains on calibration members vs population non-members, stops early on a
calibration hold-out (held-out calibration members vs calibration non-members), and that hold-out
alone sets the decision threshold. Evaluation rows are only ever scored.

The black-box attack sees the target's probability vector and the one-hot label (published sizes:
output branch C→1024→512→64, label branch C→512→64, fusion 128→256→64→1). The white-box variant
adds the per-sample loss and the gradient of the loss w.r.t. the last layer's weights (TSE 2024),
computed by :func:`safecompress.attacks.wrappers.last_layer_gradients` with ``torch.func``.
"""

from __future__ import annotations

import copy
import logging
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, scores_to_results
from safecompress.inference import resolve_device
from safecompress.training import seeded

log = logging.getLogger(__name__)


def _mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


class NasrAttackModel(nn.Module):
    """Branches per feature kind, fused into one membership logit."""

    def __init__(self, num_classes: int, gradient_dim: int = 0, with_loss: bool = False) -> None:
        super().__init__()
        branches = {"probs": _mlp(num_classes, 1024, 512, 64), "label": _mlp(num_classes, 512, 64)}
        if with_loss:
            branches["loss"] = _mlp(1, 64)
        if gradient_dim:
            branches["gradient"] = _mlp(gradient_dim, 256, 64)
        self.branches = nn.ModuleDict(branches)
        self.fusion = nn.Sequential(_mlp(64 * len(branches), 256, 64), nn.Linear(64, 1))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = torch.cat([branch(features[name]) for name, branch in self.branches.items()], dim=1)
        return self.fusion(fused).squeeze(1)


def _protocol_rows(inputs: AttackInputs, holdout_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, train labels, hold-out rows, hold-out labels), balanced, never evaluation rows."""
    calibration = inputs.mask(Role.CALIBRATION)
    members = rng.permutation(np.flatnonzero(calibration & (inputs.membership == 1)))
    own_non_members = rng.permutation(np.flatnonzero(calibration & (inputs.membership == 0)))
    population = rng.permutation(np.flatnonzero(inputs.mask(Role.POPULATION)))
    n_hold = int(round(holdout_fraction * members.size))
    if n_hold < 2 or members.size - n_hold < 2:
        raise ValueError(f"the learned attacks need more calibration members than {members.size}")
    hold_members, train_members = members[:n_hold], members[n_hold:]
    if own_non_members.size >= 2:  # hold out the calibration non-members; train on the population
        hold_non, train_pool = own_non_members[:n_hold], population
    else:
        hold_non, train_pool = population[:n_hold], population[n_hold:]
    if train_pool.size < 2:
        raise ValueError("the learned attacks need population rows as training non-members")
    n_train = min(train_members.size, train_pool.size)
    train = np.r_[train_members[:n_train], train_pool[:n_train]]
    hold = np.r_[hold_members, hold_non]
    return train, np.r_[np.ones(n_train), np.zeros(n_train)], hold, np.r_[np.ones(hold_members.size), np.zeros(hold_non.size)]


def _features(inputs: AttackInputs, train_rows: np.ndarray, white_box: bool, log_outputs: bool) -> dict[str, np.ndarray]:
    """Output vector and one-hot label; white-box adds loss and gradient, standardised on training rows.

    ``log_outputs`` feeds log-probabilities (clipped at −30, scaled by 1/10) instead of probabilities:
    a confident model's probabilities all sit near 0 or 1, where an MLP cannot see the differences
    that separate members from non-members.
    """
    n, c = len(inputs), inputs.num_classes
    outputs = np.maximum(inputs.log_probs(), -30.0) / 10.0 if log_outputs else inputs.probabilities()
    features = {"probs": outputs.astype(np.float32), "label": np.eye(c, dtype=np.float32)[inputs.labels]}
    if white_box:
        if inputs.gradients is None:
            raise ValueError("the white-box attack needs per-sample gradients: build the inputs with gradients=True")
        for name, values in (("loss", inputs.per_sample_loss().reshape(n, 1)), ("gradient", np.asarray(inputs.gradients, dtype=np.float64))):
            mean, std = values[train_rows].mean(axis=0), values[train_rows].std(axis=0)
            features[name] = ((values - mean) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)
    return features


def nasr_attack(
    inputs: AttackInputs,
    *,
    white_box: bool = False,
    log_outputs: bool = False,
    device: torch.device | str | None = "auto",
    seed: int = 0,
    max_epochs: int = 100,
    patience: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    holdout_fraction: float = 0.25,
    options: Optional[MetricOptions] = None,
) -> AttackResults:
    """Train the Nasr attack model (Adam, BCE) and score every row with its membership logit.

    The defaults are the paper's attacker (probability vector in); ``log_outputs=True`` is markedly
    stronger against confident, overfit models.
    """
    device = resolve_device(device)
    rng = np.random.default_rng(seed)
    train, y_train, hold, y_hold = _protocol_rows(inputs, holdout_fraction, rng)
    features = {k: torch.from_numpy(v).to(device) for k, v in _features(inputs, train, white_box, log_outputs).items()}
    gradient_dim = features["gradient"].shape[1] if white_box else 0
    with seeded(seed, device):
        model = NasrAttackModel(inputs.num_classes, gradient_dim, with_loss=white_box).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_t, hold_t = torch.from_numpy(train).to(device), torch.from_numpy(hold).to(device)
    y_train_t = torch.from_numpy(y_train).float().to(device)
    y_hold_t = torch.from_numpy(y_hold).float().to(device)
    shuffle = torch.Generator().manual_seed(seed)

    def rows(index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: values[index] for name, values in features.items()}

    best_loss, best_epoch, best_state, epoch = float("inf"), 0, copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(train.size, generator=shuffle).to(device)
        for start in range(0, train.size, batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(model(rows(train_t[batch])), y_train_t[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            hold_loss = float(F.binary_cross_entropy_with_logits(model(rows(hold_t)), y_hold_t))
        if hold_loss < best_loss - 1e-6:
            best_loss, best_epoch, best_state = hold_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        every = torch.arange(len(inputs), device=device)
        scores = torch.cat([model(rows(every[i : i + 4096])) for i in range(0, len(inputs), 4096)]).double().cpu().numpy()
    log.debug("nasr%s: best hold-out BCE %.4f at epoch %d of %d", "-whitebox" if white_box else "", best_loss, best_epoch, epoch)
    holdout = np.zeros(len(inputs), dtype=bool)
    holdout[hold] = True
    extra = {"white_box": white_box, "log_outputs": log_outputs, "best_epoch": best_epoch, "epochs_run": epoch, "holdout_bce": best_loss, "train_rows": int(train.size), "holdout_rows": int(hold.size)}
    return scores_to_results("nasr_whitebox" if white_box else "nasr", inputs, scores, calibration_mask=holdout, options=options, tier=1, extra=extra)


def nasr_whitebox_attack(inputs: AttackInputs, **kwargs: object) -> AttackResults:
    """:func:`nasr_attack` with the loss and last-layer gradient as extra features."""
    return nasr_attack(inputs, white_box=True, **kwargs)  # type: ignore[arg-type]
