"""Sizes read from an untrusted file never choose how much memory we take, nor reach the network.

Regressions: a 1 KB artifact declaring a consistent width-3000 ``small_cnn`` peaked at 1.38 GB
before it was found incomplete (N3), on the recorded architecture and on the ``--arch`` path; a
1 MB deflated ``torch.save`` zip unpacked +0.9 GB, and a huge declared safetensors header or
``config.json`` reached 3.66 GB (N5); a detection architecture named in an artifact started a
download of its ImageNet backbone (N4).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import zipfile
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

from safecompress.architectures import check_recorded_kwargs, resolve_recorded
from safecompress.models import small_cnn
from safecompress.safetensors_bytes import serialize
from safecompress.sparse import save_sparse_artifact

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads peak memory from /proc")

ARCH = ("--arch", "safecompress.models:small_cnn")
PEAK = "import re, sys\nfrom safecompress.cli import main\ncode = main(sys.argv[1:])\nprint('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\nsys.exit(code)\n"


def peak_run(root, *args) -> tuple[int, str, float]:
    """Exit code, output and peak resident MB of ``safecompress ARGS`` in a fresh process."""
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", PEAK, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    return result.returncode, out, int(out.split("PEAK_KB")[1].split()[0]) / 1024


@pytest.fixture(scope="module")
def baseline_peak(tmp_path_factory) -> float:
    """Peak MB of testing a normal artifact: the yardstick of the issue's 1.2x."""
    root = tmp_path_factory.mktemp("normal")
    (root / "pyproject.toml").write_text('[tool.safecompress]\ntests = ["safety_tests"]\ndata = "fashion-mnist-embedded"\n')
    (root / "safety_tests").mkdir()
    (root / "safety_tests" / "test_loaded.py").write_text("def test_loaded(model):\n    assert model is not None\n")
    save_sparse_artifact(small_cnn(), root / "normal.safetensors", arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10})
    code, out, peak = peak_run(root, "test", "normal.safetensors", "-q")
    assert code == 0, out
    return peak


def wide_artifact(path, width: int = 3000) -> None:
    """A width-16 artifact whose header claims a consistent width-``width`` network: every declared
    shape matches the architecture's, the dense tensors too; only the masks are the small ones."""
    save_sparse_artifact(small_cnn(), path, arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10})
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = load_file(str(path))
    with torch.device("meta"):
        wide = small_cnn(width=width).state_dict()
    layers = json.loads(metadata["layers"])
    for name in layers:
        layers[name]["shape"] = list(wide[name].shape)
    for key in [k for k in tensors if k.startswith("dense/")]:
        tensors[key] = torch.zeros(wide[key.removeprefix("dense/")].shape)
    metadata.update(layers=json.dumps(layers), arch_kwargs=json.dumps({"num_classes": 10, "width": width}))
    path.write_bytes(serialize(tensors, metadata))


@pytest.mark.parametrize("extra", [(), ARCH], ids=["recorded arch", "--arch"])
def test_a_small_file_cannot_declare_a_huge_model(bare_project, baseline_peak, extra):
    wide_artifact(bare_project.root / "wide.safetensors")
    with torch.device("meta"):
        declared = sum(t.numel() * 4 for t in small_cnn(width=3000).state_dict().values())
    assert declared > 200 * (bare_project.root / "wide.safetensors").stat().st_size  # ~0.4 GB from ~2 MB
    code, out, peak = peak_run(bare_project.root, "test", "wide.safetensors", *extra, "-q")
    assert code == 4 and "is incomplete or malformed" in out, out
    assert peak < 1.2 * baseline_peak, f"{peak:.0f} MB against {baseline_peak:.0f} MB for a normal artifact"


def test_a_deflated_torch_save_archive_is_refused_unpacked(bare_project, baseline_peak):
    plain = bare_project.root / "plain.pt"
    torch.save({"weight": torch.zeros(300 * 2**20 // 4)}, plain)  # 300 MB of zeros
    bomb = bare_project.root / "bomb.pt"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry))
    plain.unlink()
    assert bomb.stat().st_size < 2 * 2**20
    code, out, peak = peak_run(bare_project.root, "test", "bomb.pt", *ARCH, "-q")
    assert code == 4 and "never compresses" in out, out
    assert peak < 1.2 * baseline_peak, f"{peak:.0f} MB against {baseline_peak:.0f} MB"


def test_a_huge_declared_safetensors_header(bare_project, baseline_peak):
    path = bare_project.root / "huge-header.safetensors"
    with path.open("wb") as f:
        f.write((1_500_000_000).to_bytes(8, "little") + b'{"w":')
        f.truncate(1_500_000_100)  # a sparse file: 1.5 GB long, nothing on disk
    code, out, peak = peak_run(bare_project.root, "test", path.name, *ARCH, "-q")
    assert code == 4 and "over the 16 MiB limit" in out, out
    assert peak < 1.2 * baseline_peak


def test_a_huge_hugging_face_config(bare_project, baseline_peak):
    folder = bare_project.root / "hf"
    folder.mkdir()
    with (folder / "config.json").open("wb") as f:
        f.write(b'{"model_type": "bert", "pad": "')
        f.truncate(1_500_000_000)
    code, out, peak = peak_run(bare_project.root, "test", "hf", "-q")
    assert code == 4 and "over the 4 MiB a model configuration can need" in out, out
    assert peak < 1.2 * baseline_peak


def test_recorded_arguments_are_bounded():
    with pytest.raises(ValueError, match="beyond"):
        check_recorded_kwargs({"width": 10**30}, ("width",), "'small_cnn'")
    with pytest.raises(ValueError, match="string of"):
        check_recorded_kwargs({"width": "x" * 1000}, ("width",), "'small_cnn'")
    with pytest.raises(ValueError, match="finite JSON scalar"):
        check_recorded_kwargs({"width": [16]}, ("width",), "'small_cnn'")


def _backbone_architectures() -> list[str]:
    import torchvision.models

    return [n for n in torchvision.models.list_models() if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(n)).parameters]


def test_no_torchvision_architecture_downloads_weights():
    """Every builder with a pretrained backbone (18 in torchvision 0.29) is built with it off."""
    names = _backbone_architectures()
    assert "fasterrcnn_mobilenet_v3_large_320_fpn" in names and "ssd300_vgg16" in names

    def download(*args, **kwargs):
        raise AssertionError(f"download attempted: {args[:1]}")

    with mock.patch("torch.hub.load_state_dict_from_url", download), mock.patch("torch.hub.download_url_to_file", download):
        for name in names:
            with torch.device("meta"):
                resolve_recorded(f"torchvision:{name}", {"num_classes": 3}, {})()
            from safecompress.modelio.statedicts import build_architecture

            with torch.device("meta"):
                build_architecture(f"torchvision:{name}", 3)
