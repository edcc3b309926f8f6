"""Every bad setting or option is one line naming what is wrong, exit 4, before any work starts."""

from __future__ import annotations

import pytest
import torch

from safecompress.models import small_cnn

ARCH = ("--arch", "safecompress.models:small_cnn")


@pytest.fixture
def cnn_project(bare_project):
    torch.save(small_cnn().state_dict(), bare_project.root / "cnn.pt")
    return bare_project


def with_section(project, text: str) -> None:
    project.write("pyproject.toml", '[tool.safecompress]\ntests = ["safety_tests"]\n' + text)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('thresholds = "abc"\n', "'thresholds' must be a table"),
        ("compress = 5\n", "'compress' must be a table"),
        ('seed = "abc"\n', "'seed' must be a whole number from 0 to 4294967295"),
        ("seed = -1\n", "'seed' must be a whole number from 0 to 4294967295"),
        ("seed = 99999999999999999999\n", "'seed' must be a whole number from 0 to 4294967295"),
        ('data-options = "x"\n', "'data-options' must be a table"),
        ("gate-refs = 0\n", "'gate-refs' must be a whole number ≥ 1"),
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("trust-pickle = true\n", "unknown key 'trust-pickle'"),
        ("[tool.safecompress.thresholds]\nauc_max = nan\n", "threshold 'auc_max' must be a finite number"),
        ("[tool.safecompress.thresholds]\nauc_max = true\n", "threshold 'auc_max' must be a finite number"),
        ("[tool.safecompress.recipe]\nepochs = 2.5\n", "'epochs' must be a whole number ≥ 0"),
        ('[tool.safecompress.recipe]\naugment = "mymod:flip"\n', "unknown key 'augment'"),
    ],
)
def test_bad_pyproject_values(cnn_project, capsys, one_line_error, section, expected):
    with_section(cnn_project, section)
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-q") == 4
    assert expected in one_line_error(capsys.readouterr().out)


def test_tests_must_be_folders(cnn_project, capsys, one_line_error):
    cnn_project.write("pyproject.toml", "[tool.safecompress]\ntests = 5\n")
    assert cnn_project.run("test", "cnn.pt", *ARCH, "-q") == 4
    assert "'tests' must be a folder or a list of folders" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("candidates = 2.5", "'candidates' must be a whole number"),
        ("density = true", "'density' must be a finite number"),
        ('resume = "yes"', "'resume' must be true or false"),
        ("lambda = nan", "'lambda' must be a finite number"),
        ("nonsense = 1", "unknown setting 'nonsense'"),
    ],
)
def test_bad_compress_settings(cnn_project, capsys, one_line_error, setting, expected):
    with_section(cnn_project, f"[tool.safecompress.compress]\n{setting}\n")
    assert cnn_project.run("compress", "cnn.pt", *ARCH, "--out", "out", "-q") == 4
    assert expected in one_line_error(capsys.readouterr().out)
    assert not (cnn_project.root / "out").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("compress", "cnn.pt", *ARCH, "--lambda", "nan"), "'nan' is not a finite number"),
        (("compress", "cnn.pt", *ARCH, "--density", "inf"), "'inf' is not a finite number"),
        (("compress", "cnn.pt", *ARCH, "--density", "1e-300", "--out", "out"), "keeps no weight"),
        (("compress", "cnn.pt", *ARCH, "--resume", "--overwrite"), "pass one of them"),
        (("audit", "cnn.pt", *ARCH, "--fail-above", "nan"), "'nan' is not a finite number"),
        (("audit", "cnn.pt", *ARCH, "--refs", "0"), "0 is below the minimum 1"),
        (("test", "cnn.pt", *ARCH, "--seed", "-1"), "-1 is below the minimum 0"),
        (("test", "cnn.pt", *ARCH, "--num-classes", "0"), "0 is below the minimum 1"),
        (("test", "cnn.pt", *ARCH, "--threshold", "auc_max=nan"), "threshold 'auc_max' must be a finite number"),
        (("test", "cnn.pt", *ARCH, "--json", "r.xml", "--junitxml", "r.xml"), "would both be written to r.xml"),
        (("test", "cnn.pt", *ARCH, "--json", "safety_tests"), "is a folder, not a file"),
        (("test", "cnn.pt", *ARCH, "--junitxml", "cnn.pt/x.xml"), "cannot write to the junitxml report"),
        (("audit", "cnn.pt", *ARCH, "--attack", "loss", "--plot", "cnn.pt"), "--plot cnn.pt is a file"),
        (("audit", "cnn.pt", *ARCH, "--attack", "loss", "--json", "cnn.pt/r.json"), "cannot write to --json"),
    ],
)
def test_bad_options(cnn_project, capsys, one_line_error, args, expected):
    assert cnn_project.run(*args, "-q") == 4
    assert expected in one_line_error(capsys.readouterr().out)


def test_an_arch_module_that_raises_on_import(cnn_project, capsys, one_line_error, monkeypatch):
    cnn_project.write("brokenmodels.py", "raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(cnn_project.root))
    assert cnn_project.run("test", "cnn.pt", "--arch", "brokenmodels:net", "-q") == 4
    assert "cannot import brokenmodels: RuntimeError: no GPU here" in one_line_error(capsys.readouterr().out)


def test_the_pytest_bridge_reports_bad_config_as_a_usage_error(cnn_project):
    with_section(cnn_project, 'seed = "abc"\n')
    result = cnn_project.pytest("safety_tests", "--safecompress-model", "cnn.pt", "--safecompress-arch", "safecompress.models:small_cnn", "-q")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "'seed' must be a whole number" in output and "INTERNALERROR" not in output and "Traceback" not in output
