"""What ``safecompress bench compress`` runs: tasks (data, model, recipe), densities, seeds and arms."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

# DP-SGD (Opacus) on the parent's masks at each privacy budget ε (δ = 1/n): arm name -> ε.
DP_ARMS = {"dp-sgd-eps8": 8.0, "dp-sgd-eps1": 1.0}
ARMS = ("dense", "one-shot", "plain-dst", "early-stop", "adv-always", "relaxloss-always", *DP_ARMS, "accuracy-select", "sc-select", "sc-no-selection", "sc-final-phase", "sc-remedies", "sc-budget")
# ``--quick`` (under 10 minutes on 2 cores): every defence of the frontier, the one-candidate ablation
# and compress's own configuration (plain DST also at the next density down and at d = 0.02).
QUICK_ARMS = ("dense", "plain-dst", "early-stop", "adv-always", "relaxloss-always", *DP_ARMS, "sc-no-selection", "sc-remedies", "sc-budget")
SAFECOMPRESS_ARMS = ("sc-select", "sc-no-selection", "sc-final-phase", "sc-remedies", "sc-budget")
# sc-budget: compress's configuration under --budget 1.3, the frontier issue's cost goal (its limit is
# 1.5× plain DST's wall time; the plan counts work, and the loop's bookkeeping comes on top of it).
SC_BUDGET = 1.3
NEXT_DOWN = "plain-dst@next-down"


@dataclass(frozen=True)
class TaskSpec:
    """One dataset, its model and its training recipe (the recipe of the parent, every arm and every reference)."""

    name: str
    data: str
    data_options: dict[str, Any]
    recipe: dict[str, Any]
    model: str  # "small_cnn" or "tiny_bert"
    model_options: dict[str, Any] = field(default_factory=dict)
    densities: tuple[float, ...] = (0.1, 0.05)
    sparser: tuple[float, ...] = ()  # plain DST only, beyond ``densities``: the "just go sparser" curve
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ARMS
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": self.data,
            "data_options": self.data_options,
            "recipe": self.recipe,
            "model": self.model,
            "model_options": self.model_options,
            "densities": list(self.densities),
            "sparser": list(self.sparser),
            "seeds": list(self.seeds),
            "arms": list(self.arms),
            "note": self.note,
        }


@dataclass(frozen=True)
class BenchPlan:
    tasks: tuple[TaskSpec, ...]
    refs: int = 4
    quick: bool = False
    skipped: tuple[str, ...] = ()
    gate_checkpoints: bool = False  # run the requirements at every judged checkpoint of the SafeCompress arms (bench/prediction.py)


FASHION_DATA = {"members": 1000, "non_members": 1000, "population": 2000, "test": 2000}
TEXT_DATA = {"members": 1000, "non_members": 1000, "population": 2000, "test": 1000, "vocab_size": 4000, "max_length": 32}
WORDNET_ROOT = Path("/usr/share/wordnet")


def known_arms(arms: Sequence[str]) -> tuple[str, ...]:
    """``arms`` when every one is an arm of :data:`ARMS` (a ValueError names the unknown ones)."""
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise ValueError(f"unknown arm(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(ARMS)}")
    return tuple(arms)


def make_plan(
    quick: bool = False, seeds: Optional[Sequence[int]] = None, text: Optional[bool] = None, wordnet_root: Path = WORDNET_ROOT, claim_only: bool = False, arms: Optional[Sequence[str]] = None
) -> BenchPlan:
    """The benchmark's grid. ``--quick``: Fashion-MNIST only, one seed, d = 0.1, 30 epochs, the
    :data:`QUICK_ARMS` (plain DST also at d = 0.05 and 0.02).
    ``claim_only``: the full recipe, but only what the claim is checked on (d = 0.1 and plain DST at
    the next density down; no text task). ``arms``: only these (``dense`` always runs: every arm
    starts from it); a claim needs the arms it compares.

    Full: Fashion-MNIST at d ∈ {0.1, 0.05} over ``seeds`` (default 3) with 60 epochs (the project's
    small-member regime, where leakage is visible), plus the text task — a 2-layer BERT (h = 64) on
    WordNet glosses, one seed, d = 0.1, no accuracy-only ablation — to keep the whole grid inside an
    hour on two CPU cores.
    """
    chosen = tuple(seeds) if seeds else ((0,) if quick else (0, 1, 2))
    fashion = TaskSpec(
        name="fashion-mnist",
        data="fashion-mnist-embedded",
        data_options=dict(FASHION_DATA),
        recipe={"epochs": 30 if quick else 60, "batch_size": 128, "lr": 1e-3, "optimizer": "adam"},
        model="small_cnn",
        densities=(0.1,) if quick or claim_only else (0.1, 0.05),
        sparser=() if claim_only else (0.02,),
        seeds=chosen,
        arms=QUICK_ARMS if quick else ARMS,
    )
    if arms is not None:
        chosen_arms = known_arms(arms)
        fashion = replace(fashion, arms=tuple(a for a in ARMS if a == "dense" or a in chosen_arms))
    tasks = [fashion]
    skipped: list[str] = []
    want_text = (not quick and not claim_only) if text is None else text
    if want_text:
        if (Path(wordnet_root) / "data.noun").is_file():
            tasks.append(
                TaskSpec(
                    name="wordnet",
                    data="wordnet",
                    data_options=dict(TEXT_DATA),
                    recipe={"epochs": 30, "batch_size": 64, "lr": 1e-3, "optimizer": "adam"},
                    model="tiny_bert",
                    model_options={"hidden_size": 64, "layers": 2},
                    densities=(0.1,),
                    seeds=chosen[:1],
                    arms=("dense", "one-shot", "plain-dst", "sc-select", "sc-remedies"),
                    note="the first seed of each run only, d = 0.1 (time budget); not part of the claim",
                )
            )
        else:
            skipped.append(f"text task skipped: {Path(wordnet_root) / 'data.noun'} is missing (apt-get install wordnet-base)")
    return BenchPlan(tuple(tasks), refs=4, quick=quick, skipped=tuple(skipped))


def next_density_down(density: float, densities: Sequence[float]) -> float:
    """The next density of the grid below ``density``, else half of it."""
    lower = sorted((d for d in densities if d < density), reverse=True)
    return lower[0] if lower else round(density / 2, 6)
