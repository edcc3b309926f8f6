"""Every way a run ends maps to pytest's exit codes, with one line and no traceback."""

from __future__ import annotations

import json

import pytest


def test_exit_0_all_passed(project) -> None:
    project.write("safety_tests/test_ok.py", "def test_ok(model):\n    assert model is not None\n")
    assert project.run("test", "model.pt", "-q") == 0


def test_exit_1_some_failed(project) -> None:
    project.write("safety_tests/test_bad.py", "def test_bad():\n    assert 0.7 <= 0.5\n")
    assert project.run("test", "model.pt", "-q") == 1


def test_exit_2_interrupt_keeps_written_results(project) -> None:
    project.write(
        "safety_tests/test_int.py",
        """
        def test_first(record):
            record.metric("done", 1)

        def test_interrupted():
            raise KeyboardInterrupt

        def test_never_reached():
            pass
        """,
    )
    assert project.run("test", "model.pt", "-q", "--json", "r.json") == 2
    report = json.loads((project.root / "r.json").read_text())
    assert report["exitstatus"] == 2
    assert [t["nodeid"].split("::")[1] for t in report["tests"]] == ["test_first"]


def test_exit_2_collection_error(project, capsys) -> None:
    project.write("safety_tests/test_broken.py", "import not_a_module_anywhere\n")
    assert project.run("test", "model.pt", "-q") == 2
    assert "not_a_module_anywhere" in capsys.readouterr().out


def test_exit_3_internal_error_is_one_line(project, capsys) -> None:
    project.write("safety_tests/conftest.py", "def safecompress_sessionstart(session):\n    raise RuntimeError('plugin bug')\n")
    project.write("safety_tests/test_ok.py", "def test_ok():\n    pass\n")
    assert project.run("test", "model.pt", "-q") == 3
    out = capsys.readouterr().out
    assert "INTERNAL ERROR: RuntimeError: plugin bug" in out and "Traceback" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("test", "missing.pt"), "missing.pt"),
        (("test", "model.pt", "--bogus-option"), "unrecognized arguments"),
        (("test", "model.pt", "no_such_dir"), "not found"),
        (("test", "model.pt", "--device", "tpu"), "device"),
        (("test", "model.pt", "--threshold", "auc"), "NAME=VALUE"),
    ],
)
def test_exit_4_usage_errors(project, capsys, args, message) -> None:
    project.write("safety_tests/test_ok.py", "def test_ok(model):\n    pass\n")
    assert project.run(*args) == 4
    out = capsys.readouterr().out
    assert message in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.startswith("ERROR")]) == 1


def test_exit_4_truncated_model_file(project, capsys) -> None:
    project.write("safety_tests/test_ok.py", "def test_ok(model):\n    pass\n")
    data = (project.root / "model.pt").read_bytes()
    (project.root / "model.pt").write_bytes(data[: len(data) // 2])
    assert project.run("test", "model.pt") == 4
    out = capsys.readouterr().out
    assert "Traceback" not in out and out.count("\nERROR") + out.startswith("ERROR") >= 1


def test_exit_5_nothing_collected(project) -> None:
    project.write("safety_tests/test_none.py", "X = 1\n")
    assert project.run("test", "model.pt", "-q") == 5
