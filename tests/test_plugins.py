"""Third-party plugins through the `safecompress` entry-point group, and the switch that blocks them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = """
import safecompress
from safecompress.hookspecs import hookimpl


def canary_level():
    return 7


def canary_attack(inputs, **options):
    return {"auc": 0.5}


@hookimpl
def safecompress_register_fixtures(register):
    register(canary_level, scope="session")


@hookimpl
def safecompress_register_attacks(register):
    register("canary", canary_attack)
"""


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Path:
    """A real installed distribution: a module plus a .dist-info with entry_points.txt, on the path."""
    site = tmp_path / "site"
    dist = site / "safecompress_canary-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: safecompress-canary\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[safecompress]\ncanary = safecompress_canary\n")
    (site / "safecompress_canary.py").write_text(textwrap.dedent(PLUGIN))
    return site


def run_cli(cwd: Path, site: Path, *args: str, disable: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    env["COLUMNS"] = "200"
    if disable:
        env["SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([sys.executable, "-m", "safecompress", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_entry_point_plugin_adds_fixture_and_attack(project, installed_plugin: Path) -> None:
    listing = run_cli(project.root, installed_plugin, "plugins", disable=False)
    assert listing.returncode == 0, listing.stderr
    assert "safecompress-canary 1.2.3" in listing.stdout
    assert "canary_level" in listing.stdout
    attacks_line = next(line for line in listing.stdout.splitlines() if line.startswith("attacks:"))
    assert "canary" in attacks_line

    project.write("safety_tests/test_canary.py", "def test_level(canary_level):\n    assert canary_level == 7\n")
    assert run_cli(project.root, installed_plugin, "test", "model.pt", "-q", disable=False).returncode == 0


def test_disable_variable_blocks_autoload(project, installed_plugin: Path) -> None:
    listing = run_cli(project.root, installed_plugin, "plugins", disable=True)
    assert listing.returncode == 0
    assert "safecompress-canary" not in listing.stdout and "canary_level" not in listing.stdout
    project.write("safety_tests/test_canary.py", "def test_level(canary_level):\n    assert canary_level == 7\n")
    assert run_cli(project.root, installed_plugin, "test", "model.pt", "-q", disable=True).returncode == 1


def test_a_misspelt_hook_is_a_one_line_usage_error(project, capsys) -> None:
    project.write("safety_tests/test_ok.py", "def test_ok():\n    pass\n")
    with (project.root / "conftest.py").open("a") as handle:
        handle.write("\n\ndef safecompress_register_atacks(register):\n    register('never', None)\n")
    assert project.run("test", "model.pt", "-q") == 4
    out = capsys.readouterr().out
    assert "plugin 'conftest:conftest.py' implements 'safecompress_register_atacks', which is not a safecompress hook" in out
    assert "Traceback" not in out


def test_addoption_in_a_conftest_is_refused(project, capsys) -> None:
    project.write("safety_tests/test_ok.py", "def test_ok():\n    pass\n")
    with (project.root / "conftest.py").open("a") as handle:
        handle.write("\n\ndef safecompress_addoption(parser, command):\n    parser.add_argument('--mine')\n")
    assert project.run("test", "model.pt", "-q") == 4
    assert "safecompress_addoption never runs in a conftest" in capsys.readouterr().out
