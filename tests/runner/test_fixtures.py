"""Fixture resolution: scopes, teardown, overrides, errors."""

from __future__ import annotations

import json

import pytest

from safecompress.runner.fixtures import FixtureLookupError, FixtureManager, argnames


def test_argnames_skips_defaults_and_varargs() -> None:
    def f(a, b, c=1, *args, d, e=2, **kw):  # noqa: ANN001, ANN002, ANN003
        pass

    assert argnames(f) == ("a", "b", "d")


def test_scopes_cache_and_teardown_in_reverse_order() -> None:
    events: list[str] = []
    fm = FixtureManager()

    def sess():
        events.append("session up")
        yield "S"
        events.append("session down")

    def per_model(sess):
        events.append("model up")
        yield sess + "M"
        events.append("model down")

    def per_test(per_model):
        return per_model + "T"

    fm.add(sess, scope="session")
    fm.add(per_model, scope="model")
    fm.add(per_test, scope="test")
    assert fm.get_value("per_test", "t.py") == "SMT"
    fm.teardown("test")
    assert fm.get_value("per_test", "t.py") == "SMT"
    assert events == ["session up", "model up"]  # cached across tests
    fm.teardown("model")
    fm.get_value("per_test", "t.py")
    assert events == ["session up", "model up", "model down", "model up"]
    fm.teardown_all()
    assert events[-2:] == ["model down", "session down"]


def test_nearest_definition_wins() -> None:
    fm = FixtureManager()
    fm.add(lambda: "plugin", name="data", rank=1)
    fm.add(lambda: "root", name="data", rank=2, baseid="")
    fm.add(lambda: "sub", name="data", rank=2, baseid="tests/sub")
    assert fm.get_value("data", "tests/sub/test_a.py") == "sub"
    fm.teardown_all()
    assert fm.get_value("data", "tests/other/test_b.py") == "root"


def test_unknown_fixture_lists_available() -> None:
    fm = FixtureManager()
    fm.add(lambda: 1, name="model")
    fm.add(lambda: 2, name="data", baseid="elsewhere")
    with pytest.raises(FixtureLookupError, match=r"fixture 'nope' not found; available: model$"):
        fm.get_value("nope", "t.py")


def test_scope_mismatch_and_cycles_are_errors() -> None:
    fm = FixtureManager()

    def per_test():
        return 1

    def wide(per_test):
        return per_test

    def a(b):
        return b

    def b(a):
        return a

    fm.add(per_test, scope="test")
    fm.add(wide, scope="session")
    fm.add(a)
    fm.add(b)
    with pytest.raises(FixtureLookupError, match="scope mismatch"):
        fm.get_value("wide", "t.py")
    with pytest.raises(FixtureLookupError, match="cycle"):
        fm.get_value("a", "t.py")


def test_conftest_override_and_unknown_fixture_end_to_end(project) -> None:
    project.write(
        "safety_tests/conftest.py",
        """
        import safecompress

        @safecompress.fixture(scope="session")
        def data():
            return "nearest"
        """,
    )
    project.write(
        "conftest.py",
        """
        import safecompress, torch

        @safecompress.fixture(scope="session")
        def model_factory():
            return lambda: torch.nn.Linear(4, 2)

        @safecompress.fixture(scope="session")
        def data():
            return "root"

        @safecompress.fixture
        def resource():
            yield "open"
        """,
    )
    project.write(
        "safety_tests/test_fx.py",
        """
        def test_sees_nearest(data, resource, record):
            assert data == "nearest" and resource == "open"

        def test_missing(model, not_a_fixture):
            pass

        def test_still_runs(model):
            assert model.weight.shape == (2, 4)
        """,
    )
    code = project.run("test", "model.pt", "--json", "r.json", "-q")
    report = json.loads((project.root / "r.json").read_text())
    outcomes = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    assert code == 1
    assert outcomes["test_sees_nearest"]["outcome"] == "passed"
    assert outcomes["test_still_runs"]["outcome"] == "passed"
    missing = outcomes["test_missing"]
    assert missing["outcome"] == "error"
    assert "'not_a_fixture' not found" in missing["message"]
    for name in ("data", "model", "record", "resource", "device"):
        assert name in missing["message"]


def test_model_scope_rebuilt_when_model_changes(project) -> None:
    """The driver swaps candidates: model-scoped fixtures must see each new model."""
    import argparse

    import torch

    from safecompress.config import Config
    from safecompress.plugins import get_plugin_manager
    from safecompress.runner.session import SafetySession

    project.write(
        "safety_tests/test_m.py",
        """
        import safecompress

        BUILT = []

        @safecompress.fixture(scope="model")
        def weight_sum(model):
            BUILT.append(1)
            return float(model.weight.detach().sum())

        def test_a(weight_sum, record):
            record.metric("w", weight_sum)

        def test_b(weight_sum, record):
            record.metric("w", weight_sum)
        """,
    )
    option = argparse.Namespace(paths=[str(project.root / "safety_tests")], device="cpu")
    session = SafetySession(Config(option, {}, project.root, get_plugin_manager(load_entrypoints=False)))
    session.start()
    session.collect()
    sums = []
    for value in (1.0, 2.0):
        model = torch.nn.Linear(4, 2)
        torch.nn.init.constant_(model.weight, value)
        session.set_model(model, label=f"w{value}")
        reports = session.run()
        sums.append([r.metrics["w"] for r in reports])
    module = __import__("sys").modules[session.items[0].function.__module__]
    session.close()
    assert sums == [[8.0, 8.0], [16.0, 16.0]]
    assert len(module.BUILT) == 2  # once per model, shared by both tests
