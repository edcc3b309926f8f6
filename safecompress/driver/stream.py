"""The member stream of a compression run: shuffled epochs of batches, resumable to the row.

``TrainState`` is the position in the stream (with the RNG states in the checkpoint, enough to
resume bit-identically); a one-sample tail batch is skipped (batch norm cannot train on it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

import torch

from safecompress.data.splits import Split


@dataclass
class TrainState:
    """Position in the data stream, the rollback learning-rate scale and the decisions logged."""

    step: int = 0
    epoch: int = 0
    position: int = 0
    order: Optional[torch.Tensor] = None
    lr_scale: float = 1.0
    rollbacks: int = 0
    decisions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "TrainState":
        return cls(
            step=int(state["step"]),
            epoch=int(state["epoch"]),
            position=int(state["position"]),
            order=None if state["order"] is None else state["order"].cpu().clone(),
            lr_scale=float(state["lr_scale"]),
            rollbacks=int(state["rollbacks"]),
            decisions=int(state["decisions"]),
        )


def steps_per_epoch(rows: int, batch_size: int) -> int:
    full, tail = divmod(rows, batch_size)
    return full + (1 if tail > 1 or (tail == 1 and full == 0) else 0)


def batch_of(split: Split, rows: torch.Tensor, device: Any) -> tuple[Any, torch.Tensor]:
    """The inputs (a tensor or a dict of tensors) and labels of ``rows``, on ``device``."""
    inputs = split.inputs
    if isinstance(inputs, Mapping):
        x: Any = {k: v[rows].to(device) for k, v in inputs.items()}
    else:
        x = inputs[rows].to(device)
    return x, split.labels[rows].to(device)
