"""Fixtures of the shipped safety suite (a project's conftest loads them with
``safecompress_plugins = ["safecompress.suite.fixtures"]``; its own fixtures of the same names win).

The in-loop (``cheap``) tests run on every candidate model during compression, so they share one
inference pass per model: the population split is queried once (``population_logits``), for the
accuracy guard and for the audit set's non-member and z rows, which are population rows; only the
audit's members are queried besides. Their reference model is trained once per session (on the
full population, by the target's own recipe) and its outputs reused. The ``gate`` tests attack the
final model with fresh, fully sized references.
"""

import dataclasses

import safecompress
from safecompress.attacks import rmia_attack, run_attacks
from safecompress.attacks.audit import audit_inputs_from_population, audit_rows, audit_splits, logits_accuracy, reference_outputs
from safecompress.attacks.reference import ReferenceRecipe, as_reference_recipe, train_reference_models
from safecompress.inference import predict_logits


@safecompress.fixture(scope="session")
def loop_rows(data, config, seed):
    """Rows of the in-loop audit set (``loop-members``, ``loop-population``): a stratified draw.

    Its non-members are population rows, never the gate's non-members: in-loop tests select
    candidates and checkpoints, and selecting on the gate's evaluation data would flatter the gate.
    Sizes trade the resolution of in-loop tests against the time they add to training.
    """
    return audit_rows(data, int(config.getoption("loop_members", 500)), int(config.getoption("loop_population", 300)), seed)


@safecompress.fixture(scope="session")
def loop_data(data, loop_rows):
    """The in-loop audit set itself: every candidate model is queried on it."""
    return audit_splits(data, loop_rows)


@safecompress.fixture(scope="session")
def reference_cache():
    """Outputs of the in-loop reference model, filled by the first model that asks (session-wide).

    The reference is the first of the gate's references (same recipe, population half and seed, so
    the same cache entry): the in-loop test costs no extra training.
    """
    return {}


@safecompress.fixture(scope="session")
def reference_recipe(session, train_recipe):
    """How reference models are built and trained: by the project's ``model_factory`` (a conftest
    fixture that builds the architecture without arguments) and the target's recipe; without one, a
    re-initialised copy of the model under test and the recipe. A reference trained differently
    from the target miscalibrates LiRA and RMIA."""
    factory = session.defaults.model_factory()
    return train_recipe if factory is None else ReferenceRecipe(factory, train_recipe)


def audit_inputs(model, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, population_logits=None):
    """Attack inputs of ``model`` on the audit set, with the cached reference outputs (from the
    model's ``population_logits`` when given, so only the audit's members are queried)."""
    if population_logits is None:
        population_logits = predict_logits(model, data.population, device)
    inputs = audit_inputs_from_population(model, loop_data, loop_rows, population_logits, device, seed)
    if "ref_logits" not in reference_cache:
        references = train_reference_models(as_reference_recipe(reference_recipe, model), data.population, 1, seed=seed, device=device)
        reference_cache["ref_logits"], reference_cache["ref_in"] = reference_outputs(references, loop_data, loop_rows, device)
    return dataclasses.replace(inputs, ref_logits=reference_cache["ref_logits"], ref_in=reference_cache["ref_in"])


@safecompress.fixture(scope="model")
def population_logits(model, data, device):
    """The model's logits on the whole population split: one pass serves the accuracy guard and the audit set."""
    return predict_logits(model, data.population, device)


@safecompress.fixture(scope="model")
def loop_inputs(model, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, population_logits):
    """Attack inputs of the model under test on the audit set."""
    return audit_inputs(model, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, population_logits)


@safecompress.fixture(scope="model")
def population_accuracy(population_logits, data):
    """Accuracy on the whole population split (never trained on, never the gate's data), with its
    interval: what the performance guard watches."""
    return logits_accuracy(population_logits, data.population)


def audit_baseline(population_logits, inputs, data):
    """What the in-loop tests compare against: population accuracy and one-reference RMIA AUC on the audit set."""
    return {"accuracy": logits_accuracy(population_logits, data.population).value, "rmia1_auc": rmia_attack(inputs).auc.value}


@safecompress.fixture(scope="session")
def dense_baseline(session, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache):
    """The dense parent's population accuracy and in-loop RMIA on the same rows and reference,
    measured once per session (None without a dense parent): the in-loop tests judge the compressed
    model against its parent."""
    if session.dense_model is None:
        return None
    dense = session.dense_model.to(device).eval()
    logits = predict_logits(dense, data.population, device)
    inputs = audit_inputs(dense, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, logits)
    return audit_baseline(logits, inputs, data)


@safecompress.fixture(scope="model")
def gate_attacks(model, data, device, seed, reference_recipe, config):
    """RMIA and LiRA against the model with ``gate-refs`` reference models (``reference_recipe``)."""
    refs = int(config.getoption("gate_refs", 4))
    return run_attacks(["rmia", "lira"], model, data, device=device, refs=refs, recipe=reference_recipe, seed=seed)


@safecompress.fixture(scope="session")
def robustness_rows(data, config, seed):
    """The population rows the in-loop robustness test attacks (``loop-robustness``, default 300): a
    stratified draw, never the test split (in-loop tests select models)."""
    from safecompress.attacks.audit import draw_rows

    return data.population.subset(draw_rows(data.population, int(config.getoption("loop_robustness", 300)), seed + 1))


@safecompress.fixture(scope="session")
def dense_robustness(session, data, robustness_rows, device):
    """The dense parent's FGSM result on ``robustness_rows``, once per session (None without a parent)."""
    from safecompress.attacks.robustness import InputBox, fgsm_accuracy

    if session.dense_model is None:
        return None
    return fgsm_accuracy(session.dense_model.to(device).eval(), robustness_rows, box=InputBox.for_data(data), device=device)
