"""``safecompress init`` (issue 15): a project skeleton that runs the library suite as written, never
over existing files; the repository's own safety_tests/ is exactly that skeleton's, and the demo's
packaged settings are the repository's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomllib
import torch

from safecompress.cli import main
from safecompress.scaffold import SUITE_CONFTEST, SUITE_TESTS
from safecompress.suite import suite_folder

REPOSITORY = Path(__file__).resolve().parents[1]


def init(folder: Path, *args: str) -> int:
    return main(["init", "--dir", str(folder), *args])


def test_the_repository_safety_tests_are_what_init_writes() -> None:
    assert (REPOSITORY / "safety_tests" / "conftest.py").read_text() == SUITE_CONFTEST
    for name, text in SUITE_TESTS.items():
        assert (REPOSITORY / "safety_tests" / name).read_text() == text, name


def test_the_demo_settings_are_the_repository_settings() -> None:
    shipped = tomllib.loads((suite_folder() / "demo_project.toml").read_text())["tool"]["safecompress"]
    repository = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["safecompress"]
    assert shipped == repository


def test_init_refuses_to_write_over_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "safety_tests").mkdir()
    (tmp_path / "safety_tests" / "test_membership.py").write_text("# mine\n")
    assert init(tmp_path) == 4
    assert "safety_tests/test_membership.py already exist" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["safety_tests", "test_membership.py"]  # nothing written
    assert (tmp_path / "safety_tests" / "test_membership.py").read_text() == "# mine\n"


def test_init_extends_a_pyproject_without_a_section_and_refuses_one_with_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    assert init(tmp_path, "--data", "digits", "--arch", "torchvision:resnet18", "--num-classes", "10") == 0
    settings = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert settings["project"]["name"] == "mine"
    assert settings["tool"]["safecompress"]["data"] == "digits" and settings["tool"]["safecompress"]["arch"] == "torchvision:resnet18"
    other = tmp_path / "again"
    other.mkdir()
    (other / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text())
    capsys.readouterr()
    assert init(other) == 4 and "pyproject.toml already exist" in capsys.readouterr().out
    assert init(tmp_path / "bad", "--arch", "not a reference") == 4


@pytest.mark.slow
def test_init_then_test_runs_the_scaffolded_suite_on_a_saved_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The acceptance path: init with --arch, train a model on the scaffold's data fixture as a user
    would, then `safecompress test` it with the scaffolded tests."""
    assert init(tmp_path, "--arch", "safecompress.models:small_cnn", "--num-classes", "10") == 0
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "conftest", raising=False)
    import conftest  # the scaffold's, with its from-arrays data fixture
    from safecompress.models import small_cnn
    from safecompress.training import TrainRecipe, fit

    data = conftest.data(0)
    torch.manual_seed(0)
    model = fit(small_cnn(10), data.members, TrainRecipe(epochs=3, batch_size=64), seed=0, device="cpu")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    monkeypatch.delitem(sys.modules, "conftest")
    monkeypatch.chdir(tmp_path)
    code = main(["test", "model.pt", "--json", "r.json", "-q"])
    report = json.loads((tmp_path / "r.json").read_text())
    outcomes = {t["nodeid"]: t["outcome"] for t in report["tests"]}
    assert code in (0, 1)
    assert set(outcomes) == {
        "safety_tests/test_accuracy.py::test_accuracy",
        "safety_tests/test_accuracy.py::test_held_out_accuracy",
        "safety_tests/test_membership.py::test_loss_attack",
        "safety_tests/test_membership.py::test_rmia_in_loop",
        "safety_tests/test_membership.py::test_rmia_validation",
        "safety_tests/test_membership.py::test_rmia_gate",
        "safety_tests/test_membership.py::test_no_more_leaky_than_dense",
    }
    assert outcomes["safety_tests/test_membership.py::test_no_more_leaky_than_dense"] == "skipped"  # no --dense
    ran = [t for t in report["tests"] if t["outcome"] in ("passed", "failed")]
    assert len(ran) == 6 and all(t["checks"] for t in ran)
    assert {"loss", "rmia1", "rmia"} <= {name for t in ran for name in t["info"].get("rocs", {})}
