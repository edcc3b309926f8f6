"""Fixtures of the shipped safety suite.

The in-loop (``cheap``) tests run on every candidate model during compression, so they share one
inference pass per model (``loop_inputs``) on a trimmed audit set, and their reference model is
trained once per session (on the full population, by the target's own recipe) and its outputs
reused. The ``gate`` tests attack the final model with fresh, fully sized references.
"""
import dataclasses

import numpy as np

import safecompress
from safecompress.attacks import make_attack_inputs
from safecompress.attacks.reference import as_reference_recipe, outputs_on, train_reference_models
from safecompress.data import DataSplits
from safecompress.data.sampling import stratified_order


@safecompress.fixture(scope="session")
def loop_rows(data, config, seed):
    """Which rows of each role form the in-loop audit set: ``loop-members`` members and as many
    non-members, ``loop-population`` population samples (RMIA's z samples).

    Each is a stratified random draw, not the first rows: a split keeps its source order, and a
    source stored class by class (WordNet's data.noun is) would give a slice of a few classes.
    Sizes trade the resolution of in-loop tests against the time they add to training.
    """
    def draw(split, size):
        order = stratified_order(split.labels.numpy(), np.random.default_rng(seed))
        return np.sort(order[: min(len(split), size)])

    members = min(len(data.members), len(data.non_members), int(config.getoption("loop_members", 500)))
    return {
        "members": draw(data.members, members),
        "non_members": draw(data.non_members, members),
        "population": draw(data.population, int(config.getoption("loop_population", 300))),
    }


@safecompress.fixture(scope="session")
def loop_data(data, loop_rows):
    """The in-loop audit set itself: every candidate model is queried on it."""
    return DataSplits(
        data.members.subset(loop_rows["members"]), data.non_members.subset(loop_rows["non_members"]),
        data.population.subset(loop_rows["population"]), data.test, data.num_classes, data.source, data.seed,
    )


@safecompress.fixture(scope="session")
def reference_cache():
    """Outputs of the in-loop reference model, filled by the first model that asks (session-wide).

    The reference is the first of the gate's references (same recipe, population half and seed, so
    the same cache entry): the in-loop test costs no extra training.
    """
    return {}


@safecompress.fixture(scope="model")
def loop_inputs(model, data, loop_data, loop_rows, device, seed, train_recipe, reference_cache):
    """Attack inputs of the model under test on the audit set, with the cached reference outputs."""
    inputs = make_attack_inputs(model, loop_data, device=device, seed=seed)
    if "ref_logits" not in reference_cache:
        references = train_reference_models(as_reference_recipe(train_recipe, model), data.population, 1, seed=seed, device=device)
        parts = [loop_data.members, loop_data.non_members, loop_data.population]
        reference_cache["ref_logits"] = outputs_on(references.models, parts, device, 512)
        ref_in = np.zeros((1, sum(len(p) for p in parts)), dtype=bool)
        ref_in[:, len(parts[0]) + len(parts[1]) :] = references.in_pool[:, loop_rows["population"]]
        reference_cache["ref_in"] = ref_in
    return dataclasses.replace(inputs, ref_logits=reference_cache["ref_logits"], ref_in=reference_cache["ref_in"])


@safecompress.fixture(scope="model")
def gate_attacks(model, data, device, seed, train_recipe, config):
    """RMIA and LiRA against the model with ``gate-refs`` reference models trained by the target's recipe."""
    from safecompress.attacks import run_attacks

    refs = int(config.getoption("gate_refs", 4))
    return run_attacks(["rmia", "lira"], model, data, device=device, refs=refs, recipe=train_recipe, seed=seed)
