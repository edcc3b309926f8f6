"""The shipped `safety_tests/` judge a model against its dense parent when there is one and fall
back to the absolute limits when there is none. Gate tests are requirements (held-out accuracy,
gate RMIA, loss attack vs the parent); in-loop tests are steering targets: the accuracy target
(ranked on select rows, met on confirm rows) and the in-loop RMIA, calibrated from the requirement."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from safecompress.attacks import make_attack_inputs
from safecompress.attacks.audit import audit_rows, audit_splits
from safecompress.bench.compress import start_session
from safecompress.bench.plan import TaskSpec
from safecompress.config import find_rootdir
from safecompress.data import fashion_mnist_embedded
from safecompress.inference import predict_logits
from safecompress.models import small_cnn
from safecompress.runner.marks import get_marks
from safecompress.runner.record import Record
from safecompress.training import TrainRecipe, fit

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = {"accuracy_min": 0.30, "accuracy_drop_max": 0.01, "loop_rmia_auc_max": 0.58, "rmia_gain_min": 0.05, "loop_rmia_margin_se": 1.0}


def shipped(name: str) -> ModuleType:
    """A module of the library suite, which the project's safety_tests/ re-export."""
    return importlib.import_module(f"safecompress.suite.{name}")


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Attack inputs on a real audit set for a barely trained and a well trained SmallCNN."""
    conftest = shipped("fixtures")
    data = fashion_mnist_embedded(members=200, non_members=200, population=200, test=50, seed=0)
    recipe = TrainRecipe(epochs=12, batch_size=32)
    weak = fit(small_cnn(10, width=8), data.members, TrainRecipe(epochs=1, batch_size=32), seed=0, device="cpu").eval()
    strong = fit(small_cnn(10, width=8), data.members, recipe, seed=0, device="cpu").eval()
    rows = audit_rows(data, 150, 100, 0)
    loop_data = audit_splits(data, rows)
    cache: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        inputs = {name: conftest.audit_inputs(model, data, loop_data, rows, "cpu", 0, recipe, cache) for name, model in (("weak", weak), ("strong", strong))}
    accuracy_rows = conftest.accuracy_rows(data, rows)
    accuracy = {f"{name}_accuracy": conftest.split_accuracy(predict_logits(model, data.population, "cpu"), data, accuracy_rows) for name, model in (("weak", weak), ("strong", strong))}
    baseline = conftest.audit_baseline(predict_logits(strong, data.population, "cpu"), inputs["strong"], data, accuracy_rows)
    return {**inputs, **accuracy, "strong_baseline": baseline, "data": data, "loop_data": loop_data, "strong_model": strong, "accuracy_rows": accuracy_rows, "rows": rows}


def test_the_shared_population_pass_gives_the_inputs_of_a_separate_pass(audit: dict) -> None:
    """The audit inputs built from the population logits are make_attack_inputs' own, row for row."""
    separate = make_attack_inputs(audit["strong_model"], audit["loop_data"], device="cpu", seed=0)
    shared = audit["strong"]
    for field in ("labels", "membership", "role", "source_indices"):
        assert (getattr(shared, field) == getattr(separate, field)).all(), field
    assert shared.logits.shape == separate.logits.shape
    assert abs(shared.logits - separate.logits).max() < 1e-4


def run(test, **kwargs) -> Record:
    record = Record()
    test(record=record, thresholds=dict(THRESHOLDS), **kwargs)
    return record


def test_accuracy_target_ranks_on_select_rows_and_is_met_on_confirm_rows(audit: dict) -> None:
    test_accuracy = shipped("test_accuracy").test_accuracy
    names = {m.name for m in get_marks(test_accuracy)}
    assert {"performance", "target"} <= names and "requirement" not in names
    rows = audit["accuracy_rows"]
    assert not set(rows["select"]) & set(rows["confirm"]) and len(rows["select"]) + len(rows["confirm"]) == len(audit["data"].population)
    assert set(rows["select"]) == set(audit["rows"]["non_members"]) | set(audit["rows"]["population"])  # the rows the in-loop RMIA looks at
    alone = run(test_accuracy, split_accuracy=audit["weak_accuracy"], dense_baseline=None)
    assert alone.checks[0].name == "accuracy_confirm" and alone.checks[0].limit == pytest.approx(THRESHOLDS["accuracy_min"])
    assert alone.metrics["accuracy"] == pytest.approx(audit["weak_accuracy"]["select"].value)  # the utility that ranks
    relative = run(test_accuracy, split_accuracy=audit["weak_accuracy"], dense_baseline=audit["strong_baseline"])
    dense = relative.metrics["dense_accuracy_confirm"]
    assert dense == pytest.approx(audit["strong_accuracy"]["confirm"].value)  # the parent on the same (confirm) rows
    assert relative.checks[0].limit == pytest.approx(max(THRESHOLDS["accuracy_min"], dense - 0.01))
    assert not relative.checks[0].passed and relative.checks[0].policy == "point"
    itself = run(test_accuracy, split_accuracy=audit["strong_accuracy"], dense_baseline=audit["strong_baseline"])
    assert itself.checks[0].passed  # the parent is within one point of itself


def test_in_loop_rmia_target_is_calibrated_from_the_requirement(audit: dict) -> None:
    from safecompress.suite.calibration import steering_target

    test_rmia_in_loop = shipped("test_membership").test_rmia_in_loop
    marks = {m.name: m for m in get_marks(test_rmia_in_loop)}
    assert marks["remedy"].args == ("adversarial_regularization", "relaxloss")
    assert marks["target"].kwargs["serves"] == "test_rmia_gate"
    alone = run(test_rmia_in_loop, loop_inputs=audit["strong"], rmia_steering_target=None)
    assert alone.checks[0].limit == pytest.approx(THRESHOLDS["loop_rmia_auc_max"])
    baseline = audit["strong_baseline"]
    loop_parent = baseline["rmia1_auc"]
    # a parent whose gate RMIA is 0.70 and in-loop RMIA the measured one, on an audit set of the shipped size
    # (this tiny one is too small for any target: test_a_target_inside_the_noise_of_chance_is_moved_or_dropped)
    target = steering_target(loop_parent=loop_parent, loop_parent_interval=tuple(baseline["rmia1_auc_interval"]), gate_parent=0.70, requirement=0.65, members=500, non_members=500)
    assert target.limit is not None, target.note
    itself = run(test_rmia_in_loop, loop_inputs=audit["strong"], rmia_steering_target=target)
    assert itself.metrics["rmia1_auc"] == pytest.approx(loop_parent) and itself.metrics["dense_rmia1_auc"] == pytest.approx(loop_parent)
    assert itself.checks[0].limit == pytest.approx(target.limit) and itself.checks[0].limit < loop_parent
    assert not itself.checks[0].passed  # the parent does not meet a target set below itself
    assert itself.info["calibration"]["requirement"] == 0.65


def test_steering_target_maps_the_requirement_across_scales() -> None:
    from safecompress.suite.calibration import null_auc_se, steering_target

    # parent: in-loop 0.66 ± 0.02 (SE), gate 0.70; requirement 0.65 = 0.05 below the parent at the gate
    target = steering_target(loop_parent=0.66, loop_parent_interval=(0.66 - 1.959964 * 0.02, 0.66 + 1.959964 * 0.02), gate_parent=0.70, requirement=0.65, members=500, non_members=500)
    assert target.scale == pytest.approx(0.8)  # 0.16 above chance in the loop, 0.20 at the gate
    assert target.calibrated == pytest.approx(0.5 + 0.15 * 0.8 - 0.02)  # 0.60: the gain maps to 0.04, less one SE of in-loop noise
    assert target.limit == target.calibrated and not target.note
    assert target.chance_floor == pytest.approx(0.5 + 2 * null_auc_se(500, 500))
    assert null_auc_se(500, 500) == pytest.approx(((1001) / (12 * 500 * 500)) ** 0.5)


def test_a_target_inside_the_noise_of_chance_is_moved_or_dropped() -> None:
    from safecompress.suite.calibration import steering_target

    # in-loop parent 0.56 vs gate 0.70: the calibrated target (0.5 + 0.15·0.3 − 0.02 = 0.525) is within noise of chance
    moved = steering_target(loop_parent=0.56, loop_parent_interval=(0.52, 0.60), gate_parent=0.70, requirement=0.65, members=500, non_members=500)
    assert moved.calibrated < moved.chance_floor and moved.limit == pytest.approx(moved.chance_floor)
    assert "moved from 0.52" in moved.note and "noise of chance" in moved.note
    dropped = steering_target(loop_parent=0.53, loop_parent_interval=(0.49, 0.57), gate_parent=0.70, requirement=0.65, members=500, non_members=500)
    assert dropped.limit is None and "no in-loop RMIA target" in dropped.note
    test_rmia_in_loop = shipped("test_membership").test_rmia_in_loop
    from safecompress.runner.outcomes import Skipped

    record = Record()
    with pytest.raises(Skipped, match="no in-loop RMIA target"):
        test_rmia_in_loop(loop_inputs=None, rmia_steering_target=dropped, record=record, thresholds=dict(THRESHOLDS))
    assert record.info["warnings"] == [dropped.note]


def test_held_out_accuracy_decides_the_accuracy_requirement() -> None:
    """A hand-made case where population and test accuracy disagree: the model loses nothing on the
    population rows and two points on the test split; the requirement, on the test split against the
    parent's rows, fails, and the steering target, on population rows, is met."""
    import numpy as np

    from safecompress.metrics import clopper_pearson

    module = shipped("test_accuracy")
    rng = np.random.default_rng(0)
    dense_correct = (rng.random(2000) < 0.83).astype(float)
    compressed = dense_correct.copy()
    flipped = rng.choice(np.flatnonzero(dense_correct == 1), 40, replace=False)  # 40 of 2,000 rows = 2 points
    compressed[flipped] = 0

    class Rows:  # stands in for the model and data: correct_rows(model, data.test, device) is replaced
        test = None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shipped("fixtures"), "correct_rows", lambda model, split, device: compressed)
        requirement = Record()
        module.test_held_out_accuracy(model=Rows(), data=Rows(), device="cpu", dense_test_correct=dense_correct, record=requirement, thresholds=dict(THRESHOLDS))
    check = requirement.checks[0]
    assert check.name == "test_accuracy_minus_dense" and check.value == pytest.approx(-0.02) and not check.passed
    assert check.interval[0] < -0.02 < check.interval[1] and check.interval[1] - check.interval[0] < 0.02  # paired: tight
    same = clopper_pearson(830, 1000)
    target = run(module.test_accuracy, split_accuracy={"select": same, "confirm": same}, dense_baseline={"accuracy_confirm": 0.83})
    assert target.checks[0].passed  # the population says all is well; only the held-out split sees the loss


def test_the_audit_set_never_uses_the_gates_non_members() -> None:
    """In-loop tests select candidates and checkpoints, so their non-members (and z samples) are
    disjoint population rows the in-loop reference never trained on; the gate keeps every non-member."""
    from safecompress.attacks.reference import reference_membership

    data = fashion_mnist_embedded(members=400, non_members=400, population=600, test=50, seed=0)
    rows = audit_rows(data, 250, 100, 3)
    assert len(rows["members"]) == len(rows["non_members"]) == 200 and len(rows["population"]) == 100  # 300 rows outside reference 0
    assert not set(rows["non_members"]) & set(rows["population"])
    inside = reference_membership(len(data.population), 1, 3)[0]
    assert not inside[rows["non_members"]].any() and not inside[rows["population"]].any()
    audit = audit_splits(data, rows)
    assert audit.non_members.fingerprint() == data.population.subset(rows["non_members"]).fingerprint()
    assert set(audit.non_members.labels.tolist()) == set(range(10))  # stratified
    assert len(audit_rows(data, 50, 100, 3)["non_members"]) == 50


def test_validation_rows_are_never_the_rows_the_gate_scores() -> None:
    """The validation RMIA chooses the checkpoint that ships, so its members and non-members are the
    gate's calibration rows, never its evaluation rows (choosing on those would flatter the gate);
    population and test split are the gate's own, so its references are reused."""
    from safecompress.attacks.data_structures import attack_rows

    data = fashion_mnist_embedded(members=300, non_members=300, population=200, test=50, seed=0)
    view = shipped("fixtures").validation_data(data, 4)
    scored = attack_rows(data, 4)["evaluation"]
    assert len(view.members) == len(view.non_members) == 150
    assert not set(view.members.indices.tolist()) & set(scored["members"]) and not set(view.non_members.indices.tolist()) & set(scored["non_members"])
    assert set(view.members.indices.tolist()) == set(attack_rows(data, 4)["calibration"]["members"])
    assert view.population.fingerprint() == data.population.fingerprint() and view.test.fingerprint() == data.test.fingerprint()


def test_every_fixture_the_shipped_tests_request_exists() -> None:
    """Collect `safety_tests/` as the driver does: each requested fixture (and each fixture's own
    requests) must be defined by the conftest or a built-in, or the test would end in `error`."""
    from safecompress.bench.compress import start_session
    from safecompress.bench.plan import make_plan
    from safecompress.config import find_rootdir

    root, ini = find_rootdir(ROOT)
    session = start_session(make_plan(quick=True, text=False).tasks[0], 0, "cpu", root, ini, 2)
    try:
        for item in session.items:
            available = set(session.fixtures.available(item.relpath))
            pending, seen = list(item.argnames), set()
            while pending:
                name = pending.pop()
                if name in seen:
                    continue
                seen.add(name)
                assert name in available, f"{item.nodeid} requests {name!r}, which nothing defines"
                fixturedef = session.fixtures.lookup(name, item.relpath)
                pending.extend(getattr(fixturedef, "argnames", ()))
        assert {item.name for item in session.items} >= {"test_accuracy", "test_held_out_accuracy", "test_rmia_in_loop", "test_rmia_gate", "test_no_more_leaky_than_dense"}
        roles = {item.name: item.role for item in session.items}
        assert roles == {
            "test_accuracy": "target",
            "test_loss_attack": "target",
            "test_rmia_in_loop": "target",
            "test_rmia_validation": "target",
            "test_held_out_accuracy": "requirement",
            "test_rmia_gate": "requirement",
            "test_no_more_leaky_than_dense": "requirement",
        }
        assert session.role_notes() == []  # every shipped test declares its role
    finally:
        session.close()


def test_one_evaluation_queries_the_population_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The accuracy guard and the audit share one pass over the population split: judging a model
    queries the population rows once and the audit's members besides (issue 14, cost)."""
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    task = TaskSpec("tiny", "fashion-mnist-embedded", {"members": 120, "non_members": 120, "population": 240, "test": 40}, {"epochs": 2, "batch_size": 32}, "small_cnn")
    root, project_ini = find_rootdir(ROOT)
    session = start_session(task, 0, "cpu", root, project_ini, 1)
    try:
        data = session.fixture_value("data")
        parent = fit(small_cnn(10, width=8), data.members, TrainRecipe(epochs=2, batch_size=32), seed=0, device="cpu").eval()
        session.dense_model = parent
        model = fit(small_cnn(10, width=8), data.members, TrainRecipe(epochs=1, batch_size=32), seed=1, device="cpu").eval()
        rows: list[int] = []
        handle = model.register_forward_hook(lambda module, args, output: rows.append(len(args[0])))
        try:
            session.set_model(model, label="candidate")
            reports = session.run(select=lambda item: item.cost == "cheap")
        finally:
            handle.remove()
        audit_members = len(session.fixture_value("loop_data").members)
    finally:
        session.close()
    assert {r.outcome for r in reports} <= {"passed", "missed", "skipped"} and len(reports) == 3, [(r.nodeid, r.longrepr) for r in reports if r.outcome == "error"]
    assert sum(rows) == len(data.population) + audit_members
