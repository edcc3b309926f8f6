"""Steering targets calibrated from requirements: what the in-loop attack must show so that the gate's
attack is likely to pass (docs/driver.md, "Requirements and targets").

A requirement is stated on the gate's scale (RMIA with the gate's references on every member and
non-member). The loop cannot afford that attack on every candidate, so it aims at a target on the
in-loop scale (one reference, a small audit set). Both attacks measure the dense parent, so the
requirement's limit maps across: the AUC's distance above chance (0.5) is taken to shrink in
proportion on both scales, ``target − 0.5 = (limit − 0.5) · (loop_parent − 0.5) / (gate_parent − 0.5)``,
less ``margin_se`` standard errors of the in-loop estimate, so that a checkpoint that just meets
the target is not a coin flip at the gate. A target inside the in-loop noise of chance (two null
standard errors above 0.5) cannot be told apart from a model that leaks nothing; it is never set:
it is moved up to that floor, with a line saying so, or dropped when the parent itself is there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

CHANCE = 0.5
CHANCE_Z = 2.0  # how many null standard errors above 0.5 an in-loop AUC must be to differ from chance


def null_auc_se(members: int, non_members: int) -> float:
    """Standard error of the AUC of a useless attack (Mann–Whitney under the null) on these rows."""
    if members < 1 or non_members < 1:
        return float("inf")
    return math.sqrt((members + non_members + 1) / (12.0 * members * non_members))


@dataclass(frozen=True)
class SteeringTarget:
    """An in-loop limit and how it was derived; ``limit`` is None when no target could be set."""

    limit: Optional[float]
    calibrated: float
    chance_floor: float
    loop_parent: float
    loop_se: float
    gate_parent: float
    requirement: float
    scale: float
    margin_se: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def steering_target(*, loop_parent: float, loop_parent_interval: tuple[float, float], gate_parent: float, requirement: float, members: int, non_members: int, margin_se: float = 1.0) -> SteeringTarget:
    """The in-loop AUC limit that serves the gate requirement ``AUC ≤ requirement`` (see the module docstring)."""
    loop_se = max(0.0, (loop_parent_interval[1] - loop_parent_interval[0]) / (2 * 1.959964))
    floor = CHANCE + CHANCE_Z * null_auc_se(members, non_members)
    common = dict(loop_parent=loop_parent, loop_se=loop_se, gate_parent=gate_parent, requirement=requirement, margin_se=margin_se, chance_floor=floor)
    if gate_parent <= CHANCE or loop_parent <= floor:
        note = (
            f"no in-loop RMIA target: the dense parent's in-loop RMIA ({loop_parent:.3f}) is within the audit set's noise of chance (≤ {floor:.3f}), "
            "so the in-loop attack cannot steer toward the gate requirement; only the gate judges it"
        )
        return SteeringTarget(limit=None, calibrated=float("nan"), scale=float("nan"), note=note, **common)
    scale = (loop_parent - CHANCE) / (gate_parent - CHANCE)
    calibrated = CHANCE + (requirement - CHANCE) * scale - margin_se * loop_se
    if calibrated >= floor:
        return SteeringTarget(limit=calibrated, calibrated=calibrated, scale=scale, **common)
    note = (
        f"in-loop RMIA target moved from {calibrated:.3f} to {floor:.3f}: the calibrated value is inside the audit set's noise of chance "
        f"(0.5 + {CHANCE_Z:g} null SE), where no model could be told apart from one that leaks nothing; meeting it now predicts the gate requirement less well"
    )
    return SteeringTarget(limit=floor, calibrated=calibrated, scale=scale, note=note, **common)
