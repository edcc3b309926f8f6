"""Every random generator a run draws from, captured and restored together: torch's, Python's,
NumPy's and (once in use) CUDA's. One helper for the sparse engine's snapshots and the driver's
checkpoints, in a form ``torch.load(weights_only=True)`` reads back (NumPy's state as a tensor)."""

from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np
import torch


def capture_rng() -> dict[str, Any]:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.array(keys, dtype=np.int64)), "position": int(position), "has_gauss": int(has_gauss), "gauss": float(gauss)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    numpy_state = state["numpy"]
    keys = numpy_state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((numpy_state["kind"], keys, numpy_state["position"], numpy_state["has_gauss"], numpy_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
