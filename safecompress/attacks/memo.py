"""Session-wide memo of attack work on an unchanged model (METHOD.md §5).

A suite written the way users write it attacks ``dense_model`` inside the test body, so every
candidate of every update would query the parent and retrain its reference models again: measured
at 17× the training time in a user's project. Inside a running session, attack inputs (the model's
outputs, trained references' outputs) and attack results are kept by a key that names everything
they depend on: the model's weights and buffers (a digest of their bytes), the data (each split's
fingerprint) and every argument. A changed weight is a new key, so a memo hit returns exactly what
recomputing would. The memo belongs to one session (it sits in the session's
:class:`~safecompress.runner.context.SessionDefaults`), never to the process, and keeps only the
most recently used entries within a byte budget (outputs of a large model on a large dataset are
hundreds of MB each).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any, Hashable, Optional

import numpy as np
import torch
from torch import nn

DEFAULT_ENTRIES = 16
DEFAULT_BUDGET_BYTES = 256 * 2**20


def array_bytes(value: Any, depth: int = 0) -> int:
    """The bytes of the arrays and tensors inside ``value`` (dataclasses, dicts, sequences)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if depth > 4:
        return 0
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(array_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(array_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(array_bytes(v, depth + 1) for v in value)
    return 0


def model_fingerprint(model: nn.Module) -> str:
    """BLAKE2b of the model's class, parameter and buffer names, dtypes, shapes and bytes."""
    digest = hashlib.blake2b(type(model).__qualname__.encode(), digest_size=20)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        flat = tensor.detach().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}:{flat.device.type};".encode())
        digest.update(flat.cpu().view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


class AttackMemo:
    """A small LRU map from a work key to its result; results are handed out as copies. A result
    larger than the whole budget is not kept."""

    def __init__(self, entries: int = DEFAULT_ENTRIES, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.entries = entries
        self.budget_bytes = budget_bytes
        self.store: OrderedDict[Hashable, Any] = OrderedDict()
        self.sizes: dict[Hashable, int] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Optional[Any]:
        if key not in self.store:
            self.misses += 1
            return None
        self.hits += 1
        self.store.move_to_end(key)
        return copy.deepcopy(self.store[key])  # a caller that edits its copy cannot change another test's

    def put(self, key: Hashable, value: Any) -> None:
        size = array_bytes(value)
        if size > self.budget_bytes:
            return
        self.store[key] = copy.deepcopy(value)
        self.sizes[key] = size
        self.store.move_to_end(key)
        while len(self.store) > self.entries or sum(self.sizes.values()) > self.budget_bytes:
            oldest, _ = self.store.popitem(last=False)
            del self.sizes[oldest]
