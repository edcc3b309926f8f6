"""Mixed precision and compile (issue 16): training steps under bf16 autocast (on CUDA by default,
on the CPU when asked) and ``--compile`` keep the masks exact — every pruned weight of the shipped
model is exactly zero — and a fixed setting reproduces itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from compress_project import QUICK, make_compress_project, run_in

from safecompress.driver.loop import training_autocast
from safecompress.errors import UsageError

pytestmark = pytest.mark.slow


def test_autocast_is_bf16_only_where_asked_or_on_cuda() -> None:
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    for precision in ("fp32", "auto"):
        with training_autocast(precision, torch.device("cpu"))():
            assert layer(x).dtype == torch.float32
    with training_autocast("bf16", torch.device("cpu"))():
        assert layer(x).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32  # weights stay fp32 under autocast


def test_an_unknown_precision_is_a_usage_error() -> None:
    from safecompress.driver.settings import CompressSettings

    with pytest.raises(UsageError, match="--precision must be one of auto, fp32, bf16"):
        CompressSettings(precision="fp16")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("precision")
    make_compress_project(root)
    return root


def exported(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model_dense_export.pt", weights_only=True)


def pruned_weights_are_zero(out: Path) -> None:
    """The dense export has no more nonzero maskable weights than the masks keep (nnz)."""
    layers = json.loads((out / "report.json").read_text())["layers"]
    state = exported(out)
    assert layers
    for layer in layers:
        assert int(torch.count_nonzero(state[layer["name"]])) <= layer["nnz"], layer["name"]


def test_bf16_training_keeps_masks_exact_and_reproduces(project: Path) -> None:
    for out in ("bf16-a", "bf16-b", "fp32"):
        precision = "fp32" if out == "fp32" else "bf16"
        assert run_in(project, "compress", "parent.pt", *QUICK, "--precision", precision, "--out", out) in (0, 1)
    pruned_weights_are_zero(project / "bf16-a")
    a, b, full = (exported(project / out) for out in ("bf16-a", "bf16-b", "fp32"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same setting, the same model
    assert any(not torch.equal(a[k], full[k]) for k in a)  # and bf16 did change the arithmetic
    assert json.loads((project / "bf16-a" / "report.json").read_text())["settings"]["precision"] == "bf16"


def test_compiled_training_keeps_masks_exact(project: Path) -> None:
    assert run_in(project, "compress", "parent.pt", *QUICK, "--compile", "--out", "compiled") in (0, 1)
    pruned_weights_are_zero(project / "compiled")


def test_resuming_with_another_precision_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (project / "bf16-a" / "checkpoint.pt").exists():
        assert run_in(project, "compress", "parent.pt", *QUICK, "--precision", "bf16", "--out", "bf16-a") in (0, 1)
    capsys.readouterr()
    assert run_in(project, "compress", "parent.pt", *QUICK, "--precision", "fp32", "--out", "bf16-a", "--resume") == 4
    assert "precision" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_defaults_to_bf16_and_channels_last(project: Path) -> None:
    assert run_in(project, "compress", "parent.pt", *QUICK, "--device", "cuda", "--out", "cuda") in (0, 1)
    assert json.loads((project / "cuda" / "report.json").read_text())["device"].startswith("cuda")
    pruned_weights_are_zero(project / "cuda")
