"""The shipped `safety_tests/` judge a model against its dense parent when there is one (relative
targets) and fall back to the absolute limits when there is none; the accuracy test is the
performance guard and the in-loop RMIA test steers adversarial regularisation."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from safecompress.attacks import make_attack_inputs
from safecompress.attacks.audit import audit_rows, audit_splits, holdout_accuracy
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
THRESHOLDS = {"accuracy_min": 0.30, "accuracy_drop_max": 0.01, "loop_rmia_auc_max": 0.58, "loop_rmia_gain_min": 0.10}


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
    accuracy = {f"{name}_accuracy": holdout_accuracy(model, data.population, "cpu") for name, model in (("weak", weak), ("strong", strong))}
    baseline = conftest.audit_baseline(predict_logits(strong, data.population, "cpu"), inputs["strong"], data)
    return {**inputs, **accuracy, "strong_baseline": baseline, "data": data, "loop_data": loop_data, "strong_model": strong}


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


def test_accuracy_is_judged_against_the_dense_parent_or_the_floor(audit: dict) -> None:
    test_accuracy = shipped("test_accuracy").test_accuracy
    assert "performance" in {m.name for m in get_marks(test_accuracy)}
    alone = run(test_accuracy, population_accuracy=audit["weak_accuracy"], dense_baseline=None)
    assert alone.checks[0].limit == pytest.approx(THRESHOLDS["accuracy_min"]) and "dense_accuracy" not in alone.metrics
    relative = run(test_accuracy, population_accuracy=audit["weak_accuracy"], dense_baseline=audit["strong_baseline"])
    dense = relative.metrics["dense_accuracy"]
    assert dense > relative.metrics["accuracy"] + 0.01  # one epoch vs twelve: clearly worse
    assert relative.checks[0].limit == pytest.approx(max(THRESHOLDS["accuracy_min"], dense - 0.01))
    assert not relative.checks[0].passed and relative.checks[0].policy == "point"
    assert dense == pytest.approx(audit["strong_accuracy"].value)  # the parent on the same (population) rows
    itself = run(test_accuracy, population_accuracy=audit["strong_accuracy"], dense_baseline=audit["strong_baseline"])
    assert itself.checks[0].passed  # the parent is within one point of itself


def test_in_loop_rmia_target_is_the_parent_minus_the_gain(audit: dict) -> None:
    test_rmia_in_loop = shipped("test_membership").test_rmia_in_loop
    remedy = next(m for m in get_marks(test_rmia_in_loop) if m.name == "remedy")
    assert remedy.args == ("adversarial_regularization", "relaxloss")
    alone = run(test_rmia_in_loop, loop_inputs=audit["strong"], dense_baseline=None)
    assert alone.checks[0].limit == pytest.approx(THRESHOLDS["loop_rmia_auc_max"])
    itself = run(test_rmia_in_loop, loop_inputs=audit["strong"], dense_baseline=audit["strong_baseline"])
    dense = itself.metrics["dense_rmia1_auc"]
    assert itself.metrics["rmia1_auc"] == pytest.approx(dense)
    assert itself.checks[0].limit == pytest.approx(dense - THRESHOLDS["loop_rmia_gain_min"])
    assert not itself.checks[0].passed  # a model is never 0.10 less leaky than itself


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
        assert {item.name for item in session.items} >= {"test_accuracy", "test_rmia_in_loop", "test_rmia_gate", "test_no_more_leaky_than_dense"}
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
    assert {r.outcome for r in reports} <= {"passed", "failed"} and len(reports) == 3, [(r.nodeid, r.longrepr) for r in reports if r.outcome == "error"]
    assert sum(rows) == len(data.population) + audit_members
