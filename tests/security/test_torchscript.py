"""A TorchScript archive is a program: it is loaded only with --trust-torchscript.

Regression (N1): a scripted module whose ``forward`` calls ``torch.from_file(path, True, n).copy_()``
made ``safecompress test Planter.pt`` pass and write a file; the next pytest run imported it.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from safecompress.errors import UsageError
from safecompress.modelio import load_model


class Planter(torch.nn.Module):
    """A working classifier whose forward also overwrites ``target`` with five bytes."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        payload = torch.tensor([80, 76, 65, 78, 84], dtype=torch.uint8)
        written = torch.from_file(self.target, True, 5, dtype=torch.uint8).copy_(payload)
        return self.fc(x.flatten(1)[:, :4]) + 0 * written[:1].float()  # used, so TorchScript keeps it


def planter_archive(path, marker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(Planter(str(marker))).save(str(path))


def test_the_payload_is_real_when_trusted(tmp_path, marker):
    """With the user's explicit trust the archive runs: proof the refusals below refuse a real payload."""
    planter_archive(tmp_path / "planter.pt", marker)
    model = load_model(tmp_path / "planter.pt", trust_torchscript=True)
    model(torch.randn(2, 4))
    assert marker.read_bytes() == b"PLANT"


@pytest.mark.parametrize(
    "command",
    [("test", "planter.pt"), ("compress", "planter.pt", "--out", "out"), ("audit", "planter.pt", "--attack", "loss")],
    ids=["test", "compress", "audit"],
)
def test_torchscript_is_refused_without_the_flag(bare_project, marker, capsys, one_line_error, command):
    planter_archive(bare_project.root / "planter.pt", marker)
    assert bare_project.run(*command, "-q") == 4
    line = one_line_error(capsys.readouterr().out)
    assert "TorchScript archive is a program" in line and "--trust-torchscript" in line
    assert not marker.exists()


def test_load_model_and_the_bridge_refuse_it(bare_project, marker):
    planter_archive(bare_project.root / "planter.pt", marker)
    with pytest.raises(UsageError, match="--trust-torchscript"):
        load_model(bare_project.root / "planter.pt")
    result = bare_project.pytest("safety_tests", "--safecompress-model", "planter.pt", "-q")
    assert result.returncode == 4 and "--trust-torchscript" in result.stdout + result.stderr
    assert not marker.exists()


def test_trust_is_not_a_project_setting(bare_project, marker, capsys):
    planter_archive(bare_project.root / "planter.pt", marker)
    bare_project.write("pyproject.toml", '[tool.safecompress]\ntests = ["safety_tests"]\ntrust-torchscript = true\n')
    assert bare_project.run("test", "planter.pt", "-q") == 4
    assert "trust-torchscript" in capsys.readouterr().out and not marker.exists()
