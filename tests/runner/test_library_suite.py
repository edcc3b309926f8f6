"""A library's fixtures and tests used from a project: ``safecompress_plugins`` in a conftest loads a
module's fixtures (the project's own of the same name win), and tests imported from a test module
are collected under the importing file's name (helpers imported from elsewhere are not)."""

from __future__ import annotations

import json
import sys

import pytest

LIBRARY = """
import safecompress

@safecompress.fixture(scope="session")
def library_limit():
    return 0.5

@safecompress.fixture(scope="session")
def shared_name():
    return "library"
"""

LIBRARY_TESTS = """
def test_from_library(library_limit, shared_name, record):
    record.metric("limit", library_limit)
    record.note("which", shared_name)
"""


@pytest.fixture
def library(tmp_path, monkeypatch):
    """An importable package ``mylib`` with a fixtures module and a test module, outside the project."""
    package = tmp_path / "site" / "mylib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fixtures.py").write_text(LIBRARY)
    (package / "test_suite.py").write_text(LIBRARY_TESTS)
    (package / "helpers.py").write_text("def test_helper_like_name():\n    raise AssertionError('a helper, not a test')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield package
    for name in [m for m in sys.modules if m == "mylib" or m.startswith("mylib.")]:
        del sys.modules[name]


def run_json(project) -> tuple[int, dict]:
    code = project.run("test", "model.pt", "--json", "r.json", "-q")
    return code, json.loads((project.root / "r.json").read_text())


def test_declared_fixtures_and_reexported_tests(project, library) -> None:
    project.write("safety_tests/conftest.py", 'safecompress_plugins = ["mylib.fixtures"]\n')
    project.write("safety_tests/test_project.py", "from mylib.test_suite import test_from_library  # noqa: F401\nfrom mylib.helpers import test_helper_like_name  # noqa: F401\n")
    code, report = run_json(project)
    assert code == 0
    [test] = report["tests"]
    assert test["nodeid"] == "safety_tests/test_project.py::test_from_library"  # the importing file's id
    assert test["metrics"]["limit"] == 0.5 and test["info"]["which"] == "library"


def test_a_conftest_fixture_replaces_the_declared_one(project, library) -> None:
    project.write(
        "safety_tests/conftest.py",
        """
        import safecompress

        safecompress_plugins = ["mylib.fixtures"]

        @safecompress.fixture(scope="session")
        def shared_name():
            return "project"
        """,
    )
    project.write("safety_tests/test_project.py", "from mylib.test_suite import test_from_library  # noqa: F401\n")
    code, report = run_json(project)
    assert code == 0 and report["tests"][0]["info"]["which"] == "project"


@pytest.mark.parametrize(
    ("declaration", "message"),
    [('safecompress_plugins = ["mylib.nowhere"]', "cannot be imported"), ("safecompress_plugins = [3]", "must be a list of module names")],
)
def test_bad_declarations_are_one_line_usage_errors(project, library, capsys, declaration, message) -> None:
    project.write("safety_tests/conftest.py", declaration + "\n")
    project.write("safety_tests/test_project.py", "def test_x():\n    pass\n")
    assert project.run("test", "model.pt", "-q") == 4
    out = capsys.readouterr().out
    assert message in out and "Traceback" not in out
