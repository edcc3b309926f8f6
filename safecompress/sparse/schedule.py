"""When topology updates happen and how much they prune (METHOD.md §2).

Stateless like a closed-form LR schedule: everything is a function of the optimizer step count, which
the engine stores, so resuming needs no schedule state of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PruneSchedule:
    """Cosine prune fraction p(t) = p_min + (p0 − p_min)·(1 + cos(π·t/T))/2, updates every ΔT steps.

    Give ``update_interval`` (ΔT) or ``num_updates`` (ΔT derived so that exactly that many updates fit
    before the stop); neither means 25 updates. No update happens after step
    ``(1 − stop_fraction)·total_steps`` so the final topology gets fine-tuned.
    """

    total_steps: int
    update_interval: int | None = None
    num_updates: int | None = None
    p0: float = 0.5
    p_min: float = 0.005
    stop_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be ≥ 1, got {self.total_steps}")
        if self.update_interval is not None and self.num_updates is not None:
            raise ValueError("give update_interval or num_updates, not both")
        if self.update_interval is not None and self.update_interval < 1:
            raise ValueError(f"update_interval must be ≥ 1, got {self.update_interval}")
        if self.num_updates is not None and self.num_updates < 0:
            raise ValueError(f"num_updates must be ≥ 0, got {self.num_updates}")
        if not 0.0 <= self.stop_fraction <= 1.0:
            raise ValueError(f"stop_fraction must be in [0, 1], got {self.stop_fraction}")
        if not 0.0 <= self.p_min <= self.p0 <= 1.0:
            raise ValueError(f"need 0 ≤ p_min ≤ p0 ≤ 1, got p_min={self.p_min}, p0={self.p0}")

    @property
    def stop_step(self) -> int:
        """The last step at which an update may happen."""
        return math.floor((1.0 - self.stop_fraction) * self.total_steps)

    @property
    def interval(self) -> int:
        """ΔT in optimizer steps (0 when the schedule makes no updates)."""
        n = self._target_count
        if n is None:
            return self.update_interval  # type: ignore[return-value]
        return max(1, self.stop_step // n) if n else 0

    def is_update_step(self, step: int) -> bool:
        """Whether the optimizer step numbered ``step`` (1-based) ends with a topology update."""
        interval = self.interval
        return interval > 0 and 0 < step <= self.stop_step and step % interval == 0 and self._within_count(step)

    def next_update_step(self, step: int) -> int | None:
        """The first update step at or after ``step``, or None when no update is left."""
        interval = self.interval
        if interval == 0:
            return None
        candidate = max(interval, -(-step // interval) * interval)
        return candidate if self.is_update_step(candidate) else None

    def update_steps(self) -> list[int]:
        """Every update step, in order."""
        interval = self.interval
        if interval == 0:
            return []
        return [s for s in range(interval, self.stop_step + 1, interval) if self._within_count(s)]

    def prune_fraction(self, step: int) -> float:
        """p(t), the fraction of each layer's active weights replaced at step ``t``."""
        t = min(max(step, 0), self.total_steps)
        return self.p_min + (self.p0 - self.p_min) * (1.0 + math.cos(math.pi * t / self.total_steps)) / 2.0

    @property
    def _target_count(self) -> int | None:
        if self.update_interval is not None:
            return None
        return 25 if self.num_updates is None else self.num_updates

    def _within_count(self, step: int) -> bool:
        # ΔT derived from a count is rounded down, so more multiples may fit: keep the first n.
        n = self._target_count
        return n is None or step // self.interval <= n
