"""Collection: files, functions, parametrize, skip/xfail, -k/-m, cost, import once."""

from __future__ import annotations

import json

import pytest

from safecompress.errors import UsageError
from safecompress.runner.expression import compile_expression

TESTS = """
import safecompress

IMPORTS = globals().setdefault("IMPORTS", [])
IMPORTS.append(1)

@safecompress.mark.cost("gate")
@safecompress.mark.remedy("confidence_penalty", beta=0.1)
def test_gate_attack(record):
    record.metric("imports", len(IMPORTS))

@safecompress.mark.parametrize("limit", [0.5, 0.7], ids=["tight", "loose"])
def test_limit(record, limit):
    record.at_most("auc", 0.6, limit)

@safecompress.mark.parametrize("a,b", [(1, 2), (3, 4)])
def test_pairs(a, b):
    assert a < b

@safecompress.mark.skip(reason="later")
def test_skip():
    pass

@safecompress.mark.skipif(True, reason="condition")
def test_skipif():
    pass

@safecompress.mark.xfail(reason="known leak")
def test_xfail():
    assert 0.7 <= 0.5

@safecompress.mark.xfail(reason="fixed?")
def test_xpass():
    pass

def test_runtime_skip():
    safecompress.skip("no GPU")

def helper_not_a_test():
    raise AssertionError("must not be collected")
"""


def outcomes(project, *args: str) -> tuple[int, dict[str, dict]]:
    code = project.run("test", "model.pt", "--json", "r.json", "-q", *args)
    data = json.loads((project.root / "r.json").read_text())
    return code, {t["nodeid"].split("::")[1]: t for t in data["tests"]}


def test_collects_parametrized_marked_and_skipped(project) -> None:
    project.write("safety_tests/test_c.py", TESTS)
    project.write("safety_tests/helpers.py", "def test_never(): raise AssertionError\n")
    code, tests = outcomes(project)
    assert code == 1  # test_limit[tight] fails
    assert set(tests) == {
        "test_gate_attack",
        "test_limit[tight]",
        "test_limit[loose]",
        "test_pairs[1-2]",
        "test_pairs[3-4]",
        "test_skip",
        "test_skipif",
        "test_xfail",
        "test_xpass",
        "test_runtime_skip",
    }
    assert tests["test_limit[tight]"]["outcome"] == "failed"
    assert tests["test_limit[tight]"]["margin"] == pytest.approx(-0.1)
    assert tests["test_limit[loose]"]["outcome"] == "passed"
    assert tests["test_skip"]["outcome"] == "skipped" and tests["test_skip"]["message"] == "later"
    assert tests["test_skipif"]["outcome"] == "skipped"
    assert tests["test_xfail"]["outcome"] == "xfailed"
    assert tests["test_xpass"]["outcome"] == "xpassed"
    assert tests["test_runtime_skip"]["message"] == "no GPU"
    gate = tests["test_gate_attack"]
    assert gate["cost"] == "gate" and gate["remedy"] == "confidence_penalty" and gate["remedy_options"] == {"beta": 0.1}


def test_module_imported_once_per_process(project) -> None:
    project.write("safety_tests/test_c.py", TESTS)
    outcomes(project)
    _, tests = outcomes(project)
    assert tests["test_gate_attack"]["metrics"]["imports"] == 1


@pytest.mark.parametrize(
    "args, expected",
    [
        (("-k", "limit and not loose"), {"test_limit[tight]"}),
        (("-k", "pairs or gate"), {"test_pairs[1-2]", "test_pairs[3-4]", "test_gate_attack"}),
        (("-m", "gate"), {"test_gate_attack"}),
        (("-m", "remedy and not skip"), {"test_gate_attack"}),
        (("--cost", "gate"), {"test_gate_attack"}),
        (("-k", "(tight or 3-4) and not xfail"), {"test_limit[tight]", "test_pairs[3-4]"}),
    ],
)
def test_selection_expressions(project, args, expected) -> None:
    project.write("safety_tests/test_c.py", TESTS)
    _, tests = outcomes(project, *args)
    assert set(tests) == expected


def test_exitfirst_stops_after_first_red(project) -> None:
    project.write("safety_tests/test_x.py", "def test_a():\n    assert 1 > 2\n\ndef test_b():\n    pass\n")
    code, tests = outcomes(project, "-x")
    assert code == 1 and set(tests) == {"test_a"}


@pytest.mark.parametrize("text", ["a and", "(a", "a b", "and", "a )"])
def test_bad_expressions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        compile_expression(text)


def test_expression_precedence() -> None:
    expr = compile_expression("a or b and not c")
    assert expr(lambda w: w == "a")
    assert not expr(lambda w: w in ("b", "c"))
