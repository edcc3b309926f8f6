"""Fixtures of this project's safety tests: audit sets, reference models, attack inputs.

Scopes matter because ``safecompress compress`` runs the ``cheap`` tests on every candidate model:

* ``session`` — built once per run: the audit set, the reference model's outputs;
* ``model``   — rebuilt whenever the model under test changes: its outputs on the audit set, which
  all in-loop tests share (one inference pass per candidate, not one per test);
* the ``gate`` tests train ``gate-refs`` reference models, once: they are cached on disk
  (``$SAFECOMPRESS_CACHE_DIR/refs`` or ``~/.cache/safecompress/refs``) by recipe, data and seed.
"""

import dataclasses

import safecompress
from safecompress.attacks import make_attack_inputs, run_attacks
from safecompress.attacks.audit import audit_rows, audit_splits, reference_outputs
from safecompress.attacks.reference import ReferenceRecipe, train_reference_models


@safecompress.fixture(scope="session")
def reference_recipe(model_factory, train_recipe):
    """Reference models are built by the project's factory and trained by the target's recipe:
    a reference trained differently from the target miscalibrates LiRA and RMIA."""
    return ReferenceRecipe(model_factory, train_recipe)


@safecompress.fixture(scope="session")
def loop_rows(data, config, seed):
    """Which rows of each role form the in-loop audit set: ``loop-members`` members and as many
    non-members, and ``loop-population`` population samples (RMIA's comparison set z), each a
    stratified random draw (see ``safecompress.attacks.audit``). The non-members are population rows,
    not the gate's non-members: in-loop tests select, and must not select on the gate's data."""
    return audit_rows(data, int(config.getoption("loop_members", 250)), int(config.getoption("loop_population", 300)), seed)


@safecompress.fixture(scope="session")
def loop_data(data, loop_rows):
    """The in-loop audit set itself (every candidate model is queried on it)."""
    return audit_splits(data, loop_rows)


@safecompress.fixture(scope="session")
def loop_reference(data, loop_data, loop_rows, reference_recipe, device, seed):
    """One reference model's outputs on the audit set, computed once per run, and its IN mask.

    It is trained on the same population half with the same recipe and seed as the gate's first
    reference, so it is the same cache entry: the in-loop test adds no training of its own.
    """
    refs = train_reference_models(reference_recipe, data.population, 1, seed=seed, device=device)
    return reference_outputs(refs, loop_data, loop_rows, device)


@safecompress.fixture(scope="model")
def loop_inputs(model, loop_data, loop_reference, device, seed):
    """The model under test queried once on the audit set, plus the reference outputs."""
    inputs = make_attack_inputs(model, loop_data, device=device, seed=seed)
    ref_logits, ref_in = loop_reference
    return dataclasses.replace(inputs, ref_logits=ref_logits, ref_in=ref_in)


@safecompress.fixture(scope="model")
def gate_attacks(model, data, reference_recipe, device, seed, config):
    """RMIA and LiRA on the full member/non-member sets with ``gate-refs`` reference models."""
    refs = int(config.getoption("gate_refs", 2))
    return run_attacks(["rmia", "lira"], model, data, device=device, refs=refs, recipe=reference_recipe, seed=seed)
