"""Nothing a test, a fixture, a factory or a file name does can break the run or the terminal."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
import torch

from safecompress.models import small_cnn

ARCH = ("--arch", "safecompress.models:small_cnn")


@pytest.fixture
def cnn_project(bare_project):
    torch.save(small_cnn().state_dict(), bare_project.root / "cnn.pt")
    return bare_project


def test_rich_markup_in_a_message_does_not_crash_the_run(cnn_project, capsys):
    cnn_project.write(
        "safety_tests/test_markup.py",
        """
        def test_a_markup_error():
            raise ValueError("[/bold] x")

        def test_after_it(record):
            record.metric("ran", 1)
        """,
    )
    assert cnn_project.run("test", "cnn.pt", *ARCH, "--json", "r.json") == 1
    out = capsys.readouterr().out
    assert "ValueError: [/bold] x" in out
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in json.loads((cnn_project.root / "r.json").read_text())["tests"]}
    assert outcomes == {"test_a_markup_error": "error", "test_after_it": "passed", "test_model_loaded": "passed"}


def test_system_exit_from_an_arch_factory(cnn_project, capsys, one_line_error, monkeypatch):
    cnn_project.write("exiting.py", "import sys\n\ndef net(num_classes=10):\n    sys.exit(0)\n")
    monkeypatch.syspath_prepend(str(cnn_project.root))
    assert cnn_project.run("test", "cnn.pt", "--arch", "exiting:net", "-q") == 4
    assert "SystemExit" in one_line_error(capsys.readouterr().out)


def test_system_exit_from_a_conftest_fixture(cnn_project, capsys, one_line_error):
    cnn_project.write(
        "conftest.py",
        """
        import sys
        import safecompress


        @safecompress.fixture(scope="session")
        def model_factory():
            sys.exit(0)
        """,
    )
    assert cnn_project.run("test", "cnn.pt", "-q") == 4
    assert "the model_factory fixture raised SystemExit" in one_line_error(capsys.readouterr().out)


def test_system_exit_in_conftest_import_or_inside_a_test(cnn_project, capsys, one_line_error):
    cnn_project.write("safety_tests/test_exits.py", "import sys\n\ndef test_exits():\n    sys.exit(0)\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-q") == 1  # an error outcome, not a pass
    capsys.readouterr()
    cnn_project.write("conftest.py", "import sys\nsys.exit(0)\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-q") == 4
    assert "SystemExit" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize("scope", ["test", "model", "session"])
def test_a_fixture_teardown_error_is_an_error_outcome(cnn_project, scope):
    cnn_project.write(
        "conftest.py",
        f'''
        import safecompress


        @safecompress.fixture(scope="{scope}")
        def resource():
            yield 1
            raise RuntimeError("could not release the resource")
        ''',
    )
    cnn_project.write("safety_tests/test_uses.py", "def test_uses(resource):\n    assert resource == 1\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-q", "--json", "r.json", "--junitxml", "r.xml") == 1
    tests = json.loads((cnn_project.root / "r.json").read_text())["tests"]
    errors = [t for t in tests if t["outcome"] == "error"]
    assert len(errors) == 1 and "could not release the resource" in errors[0]["message"] and errors[0]["when"] == "teardown"
    assert ET.parse(cnn_project.root / "r.xml").getroot().find(".//error") is not None


def test_file_names_cannot_inject_lines_or_escapes(cnn_project, capsys):
    hostile = "test_x\n::error title=pwned::owned\x1b[2J\x01.py"
    (cnn_project.root / "safety_tests" / hostile).write_text("def test_fine(record):\n    record.metric('m', 1)\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "--junitxml", "r.xml", "--report-md", "r.md") == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("::") for line in out.splitlines())
    assert "\x1b[2J" not in out and "\x01" not in out and "\\n::error title=pwned::owned\\x1b[2J\\x01" in out
    cases = list(ET.parse(cnn_project.root / "r.xml").getroot().iter("testcase"))  # valid XML despite the \x01
    assert any("pwned" in case.get("classname", "") + case.get("name", "") for case in cases)
    assert not any(line.startswith("::") for line in (cnn_project.root / "r.md").read_text().splitlines())


def test_a_model_path_with_a_newline_stays_on_one_line(cnn_project, capsys, one_line_error):
    assert cnn_project.run("test", "missing\n::error title=x::y.pt", *ARCH, "-q") == 4
    out = capsys.readouterr().out
    assert "missing\\n::error title=x::y.pt" in one_line_error(out)
    assert not any(line.startswith("::") for line in out.splitlines())


HOSTILE = "m\n::error title=pwned::owned\x1b[2J<img src=x onerror=alert(1)>|[link](javascript:x)`"


def test_the_model_name_and_metric_names_cannot_inject_markdown(cnn_project, capsys):
    """Regression (N7): --report-md wrote the model's file name and metric names raw; a CI job
    appends it to $GITHUB_STEP_SUMMARY, where a line starting ``::error`` or raw HTML takes effect."""
    model = f"{HOSTILE}.pt"
    (cnn_project.root / model).write_bytes((cnn_project.root / "cnn.pt").read_bytes())
    cnn_project.write("safety_tests/test_names.py", f"def test_named(record):\n    record.metric({HOSTILE!r}, 0.5)\n")
    assert cnn_project.run("test", model, *ARCH, "--report-md", "r.md", "-q") == 0
    text = (cnn_project.root / "r.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert not any(line.startswith("::") for line in text.splitlines()) and "\x1b" not in text
    assert "`m\\n::error title=pwned::owned\\x1b[2J<img src=x onerror=alert(1)>\\|[link](javascript:x)'.pt`" in text  # a code span
    assert "\\<img src=x onerror=alert(1)>\\|\\[link\\](javascript:x)\\`=0.5" in text  # the metric's name, escaped
    assert all(len(re.split(r"(?<!\\)\|", row)) == 9 for row in rows), rows  # every row keeps its 7 cells


def test_a_model_exception_under_verbose_is_escaped(cnn_project, capsys):
    """Regression (N7): under -v an exception's text reached the terminal raw (ESC sequences)."""
    cnn_project.write("safety_tests/test_raises.py", f"def test_raises():\n    raise RuntimeError({HOSTILE!r})\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-v") == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and not any(line.startswith("::") for line in out.splitlines())
    assert "Traceback" in out and "\\::error title=pwned::owned\\x1b[2J" in out
