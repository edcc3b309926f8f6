"""Data-parallel compression under ``torchrun``: which process this is, and what the processes share.

torchrun launches the processes and sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; ``torch.distributed``
connects them (NCCL on CUDA, gloo on the CPU). Nothing here starts a process. Every rank trains the
same model on its shard of each member batch (``DistributedDataParallel`` averages the gradients),
so weights, masks, remedy weights and decisions stay identical on all ranks; the candidates of a
topology update are split across ranks (rank r probes and tests candidates r, r + N, …) and their
outcomes gathered before selection; rank 0 judges checkpoints, writes every file and runs the gate.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import torch

from safecompress.errors import SafeCompressError, UsageError

T = TypeVar("T")


class RanksDiverged(SafeCompressError):
    """Ranks hold different weights or masks at a decision: a bug, never a result to ship."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group (rank 0 of 1 outside torchrun: every collective is a no-op)."""

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Whether candidate ``index`` is probed and tested here."""
        return index % self.world_size == self.rank

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a batch (every rank takes every N-th row, so shards differ by at most one)."""
        return rows[self.rank :: self.world_size]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def from_main(self, value: Optional[T]) -> T:
        """Rank 0's ``value`` on every rank (the others pass anything)."""
        if not self.distributed:
            return value  # type: ignore[return-value]
        box = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a non-finite loss: all roll back)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0])
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item() > 0)

    def main_first(self, action: Callable[[], T]) -> Optional[T]:
        """Run ``action`` on rank 0 only (file writes); a usage error there is raised on every rank."""
        result, problem = None, None
        if self.is_main:
            try:
                result = action()
            except SafeCompressError as exc:
                problem = str(exc)
        problem = self.from_main(problem)
        if problem is not None:
            raise UsageError(problem)
        return result


@dataclass
class GradientSync:
    """Averages gradients of parameters outside the DDP model (a remedy's adversary) over the ranks,
    so they stay identical too; paused while ranks probe different candidates."""

    ranks: Ranks
    enabled: bool = True
    _paused: int = field(default=0, repr=False)

    def average(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        if not self.ranks.distributed or self._paused:
            return
        for parameter in parameters:
            if parameter.grad is not None:
                torch.distributed.all_reduce(parameter.grad)
                parameter.grad.div_(self.ranks.world_size)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1


def state_digest(model: torch.nn.Module, masks: dict[str, torch.Tensor], extra: Any = None) -> str:
    """SHA-256 of the model's state, the masks and ``extra`` (remedy states: an adversary's weights
    and optimizer): equal on every rank, or the ranks diverged."""
    digest = hashlib.sha256()
    _feed(digest, {"weights": model.state_dict(), "masks": masks, "extra": extra})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            _feed(digest, item)
    else:
        digest.update(repr(value).encode())


def ranks_from_environment() -> Ranks:
    """The group torchrun set up (``WORLD_SIZE`` > 1), joined once; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not torch.distributed.is_available():
        raise UsageError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # Rank 0 alone judges checkpoints and runs the gate while the others wait: a long timeout.
        torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(hours=2))
    return Ranks(torch.distributed.get_rank(), torch.distributed.get_world_size())


def rank_device(device: torch.device) -> torch.device:
    """On CUDA under torchrun each rank uses its own GPU (``LOCAL_RANK``); elsewhere ``device``."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def leave_group() -> None:
    """Tear the process group down at the end of a run (no-op outside torchrun)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
