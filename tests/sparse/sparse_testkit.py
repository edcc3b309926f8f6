"""Shared helpers for the sparse engine tests: a tiny CNN, fixed batches, optimizers, invariant checks."""

from __future__ import annotations

import torch
from torch import nn

from safecompress.sparse import SparseEngine

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")


class TinyNet(nn.Module):
    """Conv, BatchNorm, Dropout and Linear layers on 1×8×8 inputs: every kind of layer the engine meets."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 32)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        x = torch.relu(self.conv2(x)).flatten(1)
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


def batch(step: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The same batch for the same step in every process."""
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-2, weight_decay=1e-4, amsgrad=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-2, weight_decay=0.05)
    raise ValueError(name)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, engine: SparseEngine, step: int, autocast: bool = False) -> bool:
    x, y = batch(step)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = nn.functional.cross_entropy(model(x.to(next(model.parameters()).dtype)), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return engine.step()


def assert_masked(engine: SparseEngine, optimizer: torch.optim.Optimizer | None) -> None:
    """Pruned weights are exactly zero, in the weights and in every same-shaped optimizer state tensor."""
    for name, param in zip(engine.names, engine.params):
        off = ~engine.masks[name]
        assert torch.count_nonzero(param.detach()[off]) == 0, f"{name}: nonzero pruned weight"
        if optimizer is None:
            continue
        for key, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                assert torch.count_nonzero(value[off]) == 0, f"{name}: nonzero optimizer state {key!r}"
