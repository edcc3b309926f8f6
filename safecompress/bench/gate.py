"""The benchmark's gate, one function for every arm: RMIA and LiRA with reference models trained by
the target's recipe, the loss and modified-entropy attacks, held-out test accuracy; and a summary of
what the loop decided."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

GATE_ATTACKS = ("rmia", "lira", "loss", "mentr")


def _interval(value: Any) -> dict[str, float]:
    return {"value": float(value.value), "low": float(value.low), "high": float(value.high)}


@dataclass
class GateReferences:
    """The gate's reference models' outputs on every row, computed once per (task, seed) and shared by all arms."""

    ref_logits: Any
    ref_in: Any
    seconds: float
    loaded_from_cache: list[bool]


def gate_references(template: nn.Module, data: Any, recipe: Any, seed: int, device: Any, refs: int) -> GateReferences:
    """Train (or load from the on-disk cache) ``refs`` references on halves of the population, exactly as
    :func:`~safecompress.attacks.run_attacks` does offline, and keep their outputs on all rows."""
    import numpy as np

    from safecompress.attacks.reference import as_reference_recipe, outputs_on, reference_in_masks, train_reference_models

    started = time.perf_counter()
    parts = [data.members, data.non_members, data.population]
    sizes = [len(p) for p in parts]
    trained = train_reference_models(as_reference_recipe(recipe, template), data.population, refs, seed=seed, device=device)
    ref_logits = outputs_on(trained.models, parts, torch.device(device) if isinstance(device, str) else device)
    ref_in = reference_in_masks(trained, sum(sizes), np.arange(sizes[0] + sizes[1], sum(sizes)))
    return GateReferences(ref_logits, ref_in, round(time.perf_counter() - started, 3), list(trained.loaded_from_cache))


def gate_metrics(model: nn.Module, data: Any, references: GateReferences, seed: int, device: Any) -> dict[str, Any]:
    """The gate, identical for every arm: test accuracy and the attack suite against the shared references
    (equivalent to ``run_attacks(["rmia", "lira", "loss", "mentr"], model, data, refs=k, recipe=recipe, seed=seed)``)."""
    import dataclasses

    from safecompress.attacks import lira_attack, loss_attack, make_attack_inputs, modified_entropy_attack, rmia_attack
    from safecompress.driver.gate import held_out_accuracy

    started = time.perf_counter()
    inputs = make_attack_inputs(model, data, device=device, seed=seed)
    inputs = dataclasses.replace(inputs, ref_logits=references.ref_logits, ref_in=references.ref_in)
    results = {
        "rmia": rmia_attack(inputs, seed=seed),
        "lira": lira_attack(inputs),
        "loss": loss_attack(inputs),
        "mentr": modified_entropy_attack(inputs),
    }
    attacks = {}
    for name, result in results.items():
        rate = result.tpr_at(0.01)
        attacks[name] = {"auc": _interval(result.auc), "tpr_at_1pct_fpr": {**_interval(rate.tpr), "reliable": bool(rate.reliable)}}
        if name == "rmia":
            attacks[name]["a"] = result.extra.get("a")
    accuracy = held_out_accuracy(model, data, device)
    return {"test_accuracy": {k: float(accuracy[k]) for k in ("value", "low", "high")}, "attacks": attacks, "gate_seconds": round(time.perf_counter() - started, 3)}


def summarize_decisions(decisions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How much the in-loop tests could and did steer: candidate spread, disagreements with accuracy-only."""
    spreads, acc_spreads, changed, red, winner_minus_acc_best, trace = [], [], [], [], [], []
    for update in decisions:
        cands = update.get("candidates", [])
        aucs = [c["metrics"].get("rmia1_auc") for c in cands if c.get("metrics", {}).get("rmia1_auc") is not None]
        accs = [c.get("utility") for c in cands if c.get("utility") is not None]
        if len(aucs) >= 2:
            spreads.append(max(aucs) - min(aucs))
        if len(accs) >= 2:
            acc_spreads.append(max(accs) - min(accs))
        if cands:
            best_acc = max(cands, key=lambda c: c.get("utility", -1.0))
            winner = next((c for c in cands if c["name"] == update["winner"]), None)
            changed.append(winner is not None and winner["name"] != best_acc["name"])
            if winner is not None:
                trace.append({"rmia1_auc": winner["metrics"].get("rmia1_auc"), "loss_auc": winner["metrics"].get("loss_auc"), "utility": winner.get("utility")})
                red.append(any(o in ("failed", "error") and "rmia" in nodeid for nodeid, o in winner.get("outcomes", {}).items()))
                w, b = winner["metrics"].get("rmia1_auc"), best_acc["metrics"].get("rmia1_auc")
                if w is not None and b is not None:
                    winner_minus_acc_best.append(w - b)
    mean = lambda xs: float(statistics.fmean(xs)) if xs else None  # noqa: E731
    weights = [u.get("remedy_weights", {}) for u in decisions]
    return {
        "updates": len(decisions),
        "winners": [u.get("winner") for u in decisions],
        "mean_candidate_rmia1_auc_spread": mean(spreads),
        "mean_candidate_accuracy_spread": mean(acc_spreads),
        "share_winner_not_most_accurate": mean([float(c) for c in changed]),
        "mean_winner_minus_most_accurate_rmia1_auc": mean(winner_minus_acc_best),
        "share_updates_in_loop_rmia_red": mean([float(r) for r in red]),
        "remedy_weights": weights,
        "winner_in_loop_metrics": trace,
    }
