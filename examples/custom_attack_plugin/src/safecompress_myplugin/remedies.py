"""A training-time remedy: penalise the norm of the (centred) logits.

Over-confident outputs are what loss- and margin-based attacks read. Softmax ignores a constant
added to every logit, so only the centred logits ``z − mean(z)`` set the confidence; their L2 norm,
above an optional free margin ``tau``, is the penalty. A safety test switches it on with
``@safecompress.mark.remedy("logit_norm", weight=0.01, max_weight=0.16, tau=0.0)``; the driver
multiplies :meth:`loss` by a weight that starts at ``weight``, doubles while the test stays red (up
to ``max_weight``) and decays once it is green.

It implements the ``Remedy`` protocol of ``safecompress.remedies``: ``name``, ``base_weight``,
``max_weight``, ``loss(model, inputs, logits, labels)``, ``state_dict()``, ``load_state_dict()``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from safecompress.remedies import RemedyContext


class LogitNormPenalty:
    name = "logit_norm"

    def __init__(self, context: RemedyContext) -> None:
        self.base_weight = float(context.options.get("weight", 0.01))
        self.max_weight = float(context.options.get("max_weight", 0.16))
        self.tau = float(context.options.get("tau", 0.0))
        if self.base_weight <= 0 or self.max_weight < self.base_weight or self.tau < 0:
            raise ValueError(f"logit_norm: need 0 < weight <= max_weight and tau >= 0, got {context.options}")

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of max(0, ‖z − mean(z)‖₂ − tau); unweighted (the driver scales it)."""
        z = logits.float()
        norms = (z - z.mean(dim=1, keepdim=True)).norm(dim=1)
        return torch.clamp(norms - self.tau, min=0.0).mean()

    def state_dict(self) -> dict[str, Any]:
        return {}  # stateless: nothing to checkpoint or restore

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
