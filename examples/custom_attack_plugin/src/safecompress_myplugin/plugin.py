"""The hook implementations: what ``[project.entry-points.safecompress] myplugin`` points at.

SafeCompress calls each ``register`` hook with a callback; whatever this module registers appears in
``safecompress plugins`` and can be named by safety tests and by ``run_attack``.
"""

from __future__ import annotations

from typing import Any, Callable

from safecompress.attacks import AttackSpec
from safecompress.hookspecs import hookimpl
from safecompress_myplugin.attacks import top2_margin_attack
from safecompress_myplugin.remedies import LogitNormPenalty

TOP2_MARGIN = AttackSpec(
    "top2_margin",
    top2_margin_attack,
    tier=0,
    description="top-2 margin of the output, log p_y − max_{i≠y} log p_i (label_free=True: top1 − top2)",
)


@hookimpl
def safecompress_register_attacks(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register(TOP2_MARGIN.name, TOP2_MARGIN)


@hookimpl
def safecompress_register_remedies(register: Callable[[str, Any], None]) -> None:
    register(LogitNormPenalty.name, LogitNormPenalty)


def top2_margin_results(model: Any, data: Any, device: Any, seed: int) -> Any:
    """Fixture (model scope): the top-2 margin attack on the model under test, on the project's data.

    Model-scoped, so it is computed once per model and shared by every test that asks for it.
    """
    from safecompress.attacks import make_attack_inputs

    return top2_margin_attack(make_attack_inputs(model, data, device=device, seed=seed))


@hookimpl
def safecompress_register_fixtures(register: Callable[..., None]) -> None:
    register(top2_margin_results, name="top2_margin_results", scope="model")
