"""The README's tour runs as written (issue 15): its snippets are extracted from README.md and run,
so the README cannot drift from the code. The Python and TOML blocks become a project, a dense
parent is trained on that project's own ``data`` fixture, and every ``safecompress``/``pytest``
command of the tour runs in it (compression on small settings, appended after the README's options)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import Project

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = ["--epochs", "2", "--updates", "1", "--candidates", "2", "--final-checks", "1", "--attempts", "1"]


def tour() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## A five-minute tour") : text.index("## Examples")]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", tour(), flags=re.S)


def commands() -> list[list[str]]:
    """Each shell command of the tour as argv: continuation lines joined, comments dropped."""
    found = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(shlex.split(line))
    return found


def test_the_tour_has_what_this_test_runs() -> None:
    names = [block.splitlines()[0] for block in blocks("python")]
    assert names == ["# safety_tests/test_privacy.py", "# conftest.py"]
    programs = [argv[:2] for argv in commands()]
    assert programs == [["safecompress", "init"], ["safecompress", "compress"], ["safecompress", "test"], ["pytest", "safety_tests"], ["safecompress", "audit"]]


@pytest.mark.slow
def test_the_tour_runs_as_written(make_project, monkeypatch: pytest.MonkeyPatch) -> None:
    project: Project = make_project("tour")
    for block in blocks("python"):
        project.write(block.splitlines()[0].removeprefix("# "), block)
    [toml] = blocks("toml")
    project.write("pyproject.toml", toml)
    monkeypatch.syspath_prepend(str(project.root))
    monkeypatch.delitem(sys.modules, "conftest", raising=False)
    import conftest  # the tour's, with its data fixture
    from safecompress.models import small_cnn
    from safecompress.training import TrainRecipe, fit

    data = conftest.data(0)
    monkeypatch.delitem(sys.modules, "conftest")
    torch.manual_seed(0)
    dense = fit(small_cnn(10), data.members, TrainRecipe(epochs=10), seed=0, device="cpu")  # the tour's recipe
    torch.save(dense.state_dict(), project.root / "dense.pt")

    init, compress, gate, bridge, audit = commands()
    scaffold = make_project("fresh")
    assert scaffold.run(*init[1:]) == 0 and (scaffold.root / "safety_tests" / "conftest.py").is_file()

    assert project.run(*compress[1:], *SMALL) in (0, 1)  # the gate's verdict; either way it wrote the outputs
    assert (project.root / "out" / "model.safetensors").is_file()
    assert project.run(*gate[1:]) in (0, 1)
    tests = json.loads((project.root / "report.json").read_text())["tests"]
    by_name = {t["nodeid"].split("::")[1]: t for t in tests}
    assert set(by_name) == {"test_rmia", "test_rmia_gate", "test_accuracy", "test_held_out_accuracy"}
    assert by_name["test_rmia"]["role"] == "target" and by_name["test_rmia_gate"]["role"] == "requirement"
    assert by_name["test_rmia"]["info"]["rocs"]["rmia1"]["fpr"] and by_name["test_rmia_gate"]["info"]["rocs"]["rmia"]["fpr"]
    assert (project.root / "report.xml").is_file() and (project.root / "summary.md").is_file()
    run = project.pytest(*bridge[1:])
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    assert re.search(r"\d passed", run.stdout) or "failed" in run.stdout
    assert project.run(*audit[1:]) == 0
    assert any((project.root / "plots").iterdir())
