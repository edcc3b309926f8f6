"""The built-in attacks by name, with their cost tiers and what their inputs must carry.

Built-ins are registered through the same ``safecompress_register_attacks`` hook as third-party
attacks (this module is a plugin). Tiers: 0 free (cached outputs), 1 learned (an attack model is
trained), 2 strong (reference models are trained — the gate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from safecompress.attacks import inversion, learned, lira, rmia, robustness, threshold
from safecompress.attacks.data_structures import AttackInputs, AttackResults
from safecompress.hookspecs import hookimpl

REFERENCES = "references"
GRADIENTS = "gradients"
# The attack queries the model itself (gradients w.r.t. its inputs) instead of cached outputs:
# its function is called as ``function(model, data, **options)``, not on AttackInputs.
MODEL = "model"


@dataclass(frozen=True)
class AttackSpec:
    """A data-in/results-out attack plus what it costs and needs; calling it runs the attack.

    Membership attacks take :class:`AttackInputs` and return :class:`AttackResults`. An attack that
    needs :data:`MODEL` takes ``(model, data)`` and may return another results type with ``summary``
    and ``to_dict`` (robust accuracy for ``pgd``/``fgsm``)."""

    name: str
    function: Callable[..., AttackResults]
    tier: int
    needs: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    kind: str = "membership"  # what it measures: "membership" (an AUC) or "robustness" (a robust accuracy)

    def __call__(self, inputs: AttackInputs, **options: Any) -> AttackResults:
        return self.function(inputs, **options)

    @property
    def queries_model(self) -> bool:
        return MODEL in self.needs


BUILTIN_ATTACKS: dict[str, AttackSpec] = {
    spec.name: spec
    for spec in (
        AttackSpec("loss", threshold.loss_attack, 0, description="per-sample loss threshold (Yeom et al. 2018)"),
        AttackSpec("confidence", threshold.confidence_attack, 0, description="true-label probability threshold"),
        AttackSpec("entropy", threshold.entropy_attack, 0, description="prediction entropy threshold"),
        AttackSpec("mentr", threshold.modified_entropy_attack, 0, description="modified entropy, class-dependent thresholds (Song & Mittal 2021)"),
        AttackSpec("gap", threshold.gap_attack, 0, description="correct-classification attack; reports the generalization gap"),
        AttackSpec("nasr", learned.nasr_attack, 1, description="Nasr et al. black-box attack model on output vector + label"),
        AttackSpec("nasr_whitebox", learned.nasr_whitebox_attack, 1, frozenset({GRADIENTS}), "Nasr attack plus loss and last-layer gradient"),
        AttackSpec("lira", lira.lira_attack, 2, frozenset({REFERENCES}), "likelihood ratio attack (Carlini et al. 2022), online or offline"),
        AttackSpec("rmia", rmia.rmia_attack, 2, frozenset({REFERENCES}), "robust membership inference (Zarifzadeh et al. 2024), online or offline"),
        AttackSpec("inversion", inversion.inversion_attack, 1, frozenset({MODEL}), "class-representative model inversion (Fredrikson et al. 2015), scored as members vs non-members"),
        AttackSpec("pgd", robustness.pgd_attack, 1, frozenset({MODEL}), "robust accuracy under L∞ PGD (Madry et al. 2018) on the test split", "robustness"),
        AttackSpec("fgsm", robustness.fgsm_attack, 0, frozenset({MODEL}), "robust accuracy under one FGSM step (Goodfellow et al. 2015): the cheap proxy of pgd", "robustness"),
    )
}


@hookimpl
def safecompress_register_attacks(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, spec in BUILTIN_ATTACKS.items():
        register(name, spec)
