"""Graded outcomes: margins, interval policies and rewritten asserts."""

from __future__ import annotations

import json

import pytest

from safecompress.runner.record import Record


@pytest.mark.parametrize(
    "op, value, limit, interval, policy, passed, margin",
    [
        ("<=", 0.50, 0.55, None, None, True, 0.05),
        ("<=", 0.60, 0.55, None, None, False, -0.05),
        ("<=", 0.60, 0.55, (0.52, 0.68), "lenient", True, 0.03),  # cannot rule out passing
        ("<=", 0.60, 0.55, (0.56, 0.64), "lenient", False, -0.01),
        ("<=", 0.50, 0.55, (0.44, 0.56), "strict", False, -0.01),  # cannot rule out failing
        ("<=", 0.50, 0.55, (0.44, 0.56), "point", True, 0.05),
        (">=", 0.80, 0.85, (0.78, 0.86), "lenient", True, 0.01),
        (">=", 0.90, 0.85, (0.84, 0.95), "strict", False, -0.01),
    ],
)
def test_margins_and_policies(op, value, limit, interval, policy, passed, margin) -> None:
    record = Record()
    assert record.compare("m", value, op, limit, interval=interval, policy=policy) is passed
    check = record.checks[0]
    assert check.margin == pytest.approx(margin)
    assert check.passed is passed and record.metrics["m"] == value


def test_policy_needs_interval() -> None:
    with pytest.raises(ValueError, match="needs an interval"):
        Record().at_most("m", 0.1, 0.2, policy="strict")


def test_nan_never_passes() -> None:
    assert Record().at_most("m", float("nan"), 0.5) is False


def test_soft_checks_fail_at_the_end_and_rewritten_asserts_record_margins(project) -> None:
    project.write(
        "safety_tests/test_r.py",
        """
        def test_soft(record):
            record.at_most("auc", 0.7, 0.55)
            record.at_least("accuracy", 0.9, 0.8)  # still recorded after the failing check

        def test_assert_pass():
            auc = 0.52
            assert auc <= 0.55

        def test_assert_reversed():
            accuracy = 0.75
            assert 0.8 <= accuracy, "too inaccurate"

        def test_assert_non_numeric():
            assert "a" < "b"
            assert [1] != [2]
        """,
    )
    code = project.run("test", "model.pt", "--json", "r.json", "-q")
    tests = {t["nodeid"].split("::")[1]: t for t in json.loads((project.root / "r.json").read_text())["tests"]}
    assert code == 1
    soft = tests["test_soft"]
    assert soft["outcome"] == "failed" and soft["metrics"] == {"auc": 0.7, "accuracy": 0.9}
    assert "auc = 0.7 <= 0.55" in soft["message"]
    assert tests["test_assert_pass"]["checks"][0]["name"] == "auc"
    assert tests["test_assert_pass"]["margin"] == pytest.approx(0.03)
    reversed_check = tests["test_assert_reversed"]["checks"][0]
    assert (reversed_check["name"], reversed_check["op"], reversed_check["limit"]) == ("accuracy", ">=", 0.8)
    assert tests["test_assert_reversed"]["margin"] == pytest.approx(-0.05)
    assert "too inaccurate" in tests["test_assert_reversed"]["message"]
    assert tests["test_assert_non_numeric"]["outcome"] == "passed" and tests["test_assert_non_numeric"]["checks"] == []
