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

import numpy as np

import safecompress
from safecompress.attacks import rmia_attack, run_attacks
from safecompress.attacks.audit import audit_inputs_from_population, audit_rows, audit_splits, logits_accuracy, reference_outputs
from safecompress.attacks.reference import ReferenceRecipe, as_reference_recipe, train_reference_models
from safecompress.inference import predict_logits
from safecompress.suite.calibration import steering_target


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
    """Accuracy on the whole population split (never trained on, never the gate's data), with its interval."""
    return logits_accuracy(population_logits, data.population)


@safecompress.fixture(scope="session")
def accuracy_rows(data, loop_rows):
    """The population split in two for the accuracy target, against the winner's curse:
    ``select`` (the in-loop audit's non-member and z rows, which the in-loop RMIA also looks at)
    ranks candidates and checkpoints, and ``confirm`` (every other population row, seen by no other
    in-loop test) decides whether the target is met. A checkpoint chosen as the best of many on the
    rows that also accept it looks better there than it is (measured: 2.6 points on the demo's
    seed 0); accepted on rows that did not rank it, it does not."""
    select = np.union1d(loop_rows["non_members"], loop_rows["population"])
    confirm = np.setdiff1d(np.arange(len(data.population)), select)
    if len(confirm) == 0:  # a population too small to split: one set does both (and the optimism stays)
        confirm = select
    return {"select": select, "confirm": confirm}


@safecompress.fixture(scope="model")
def split_accuracy(population_logits, data, accuracy_rows):
    """The model's accuracy on the ``select`` and the ``confirm`` rows of the population, with intervals."""
    return {part: logits_accuracy(population_logits[rows], data.population.subset(rows)) for part, rows in accuracy_rows.items()}


def audit_baseline(population_logits, inputs, data, accuracy_rows):
    """What the in-loop tests compare against: population accuracy (whole, select and confirm rows)
    and one-reference RMIA AUC on the audit set, with its interval."""
    results = rmia_attack(inputs)
    rmia = results.auc
    baseline = {"accuracy": logits_accuracy(population_logits, data.population).value, "rmia1_auc": rmia.value, "rmia1_auc_interval": [rmia.low, rmia.high]}
    for part, rows in accuracy_rows.items():
        baseline[f"accuracy_{part}"] = logits_accuracy(population_logits[rows], data.population.subset(rows)).value
    baseline["rmia1_rows"] = {"members": int((results.membership == 1).sum()), "non_members": int((results.membership == 0).sum())}  # the rows the AUC is on
    return baseline


@safecompress.fixture(scope="session")
def dense_baseline(dense_parent, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, accuracy_rows):
    """The dense parent's population accuracy and in-loop RMIA on the same rows and reference,
    measured once per session (None without a dense parent): the in-loop tests judge the compressed
    model against its parent."""
    if dense_parent is None:
        return None
    dense = dense_parent
    logits = predict_logits(dense, data.population, device)
    inputs = audit_inputs(dense, data, loop_data, loop_rows, device, seed, reference_recipe, reference_cache, logits)
    return audit_baseline(logits, inputs, data, accuracy_rows)


@safecompress.fixture(scope="session")
def dense_gate_attacks(dense_parent, data, device, seed, reference_recipe, config):
    """The gate's RMIA and LiRA against the dense parent, once per session (None without a parent):
    the relative requirements compare on the same rows, and the in-loop target is calibrated from them."""
    if dense_parent is None:
        return None
    refs = int(config.getoption("gate_refs", 4))
    return run_attacks(["rmia", "lira"], dense_parent, data, device=device, refs=refs, recipe=reference_recipe, seed=seed)


@safecompress.fixture(scope="session")
def dense_test_correct(dense_parent, data, device):
    """Which held-out test rows the dense parent classifies correctly (None without a parent): the
    accuracy requirement is a paired comparison on the same rows."""
    if dense_parent is None:
        return None
    return correct_rows(dense_parent, data.test, device)


def correct_rows(model, split, device):
    """A 0/1 array: which rows of ``split`` the model classifies correctly."""
    return (predict_logits(model, split, device).argmax(1) == split.labels.cpu()).numpy().astype(np.float64)


@safecompress.fixture(scope="session")
def rmia_steering_target(dense_baseline, dense_gate_attacks, thresholds):
    """The in-loop RMIA target derived from the gate's RMIA requirement (None without a parent).

    See :func:`safecompress.suite.calibration.steering_target`: the requirement's limit on the
    gate's scale is mapped onto the in-loop scale through what both attacks measure on the dense
    parent, less a margin of in-loop noise, and never inside the in-loop noise of chance."""
    if dense_baseline is None or dense_gate_attacks is None:
        return None
    rows = dense_baseline["rmia1_rows"]
    low, high = dense_baseline["rmia1_auc_interval"]
    return steering_target(
        loop_parent=dense_baseline["rmia1_auc"],
        loop_parent_interval=(low, high),
        gate_parent=float(dense_gate_attacks["rmia"].auc.value),
        requirement=float(dense_gate_attacks["rmia"].auc.value) - float(thresholds["rmia_gain_min"]),
        members=rows["members"],
        non_members=rows["non_members"],
        margin_se=float(thresholds.get("loop_rmia_margin_se", 1.0)),
    )


VALIDATION_CALIBRATION_FRACTION = 0.25  # of the validation rows, what RMIA tunes its ``a`` on; the rest it scores


@safecompress.fixture(scope="session")
def validation_data(data, seed):
    """The members and non-members the gate only calibrates on (its ``a``, never its scores): the
    validation RMIA scores the point about to ship on them, so choosing a checkpoint by them does
    not flatter the gate's evaluation rows. Population (z rows, the references' pool) and test
    split as in ``data``, so the gate's reference models are reused from the cache."""
    from safecompress.attacks.data_structures import Role, assign_roles
    from safecompress.data.splits import DataSplits

    roles = assign_roles(len(data.members), len(data.non_members), 0.5, seed)
    members = np.flatnonzero(roles[: len(data.members)] == Role.CALIBRATION)
    non_members = np.flatnonzero(roles[len(data.members) :] == Role.CALIBRATION)
    return DataSplits(data.members.subset(members), data.non_members.subset(non_members), data.population, data.test, data.num_classes, source=data.source, seed=data.seed, extra=dict(data.extra))


def validation_rmia(model, validation_data, device, seed, reference_recipe, config):
    refs = int(config.getoption("gate_refs", 4))
    return run_attacks(["rmia"], model, validation_data, device=device, refs=refs, recipe=reference_recipe, seed=seed, calibration_fraction=VALIDATION_CALIBRATION_FRACTION)["rmia"]


@safecompress.fixture(scope="model")
def validation_attacks(model, validation_data, device, seed, reference_recipe, config):
    """RMIA with the gate's references against the model on the validation rows."""
    return {"rmia": validation_rmia(model, validation_data, device, seed, reference_recipe, config)}


@safecompress.fixture(scope="session")
def dense_validation_attacks(dense_parent, validation_data, device, seed, reference_recipe, config):
    """The same RMIA against the dense parent, once per session (None without a parent)."""
    if dense_parent is None:
        return None
    return {"rmia": validation_rmia(dense_parent, validation_data, device, seed, reference_recipe, config)}


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
def dense_robustness(dense_parent, data, robustness_rows, device):
    """The dense parent's FGSM result on ``robustness_rows``, once per session (None without a parent)."""
    from safecompress.attacks.robustness import InputBox, fgsm_accuracy

    if dense_parent is None:
        return None
    return fgsm_accuracy(dense_parent, robustness_rows, box=InputBox.for_data(data), device=device)
