"""Malformed or special files are usage errors (one line, exit 4), never a traceback, a hang or a
huge allocation."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from safecompress.models import small_cnn
from safecompress.safetensors_bytes import serialize
from safecompress.sparse import save_sparse_artifact

ARCH = ("--arch", "safecompress.models:small_cnn")


def raw_safetensors(path, header: dict, payload: bytes = b"\0" * 16) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": "x"}}, "malformed data_offsets"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, "malformed data_offsets"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 0]}}, "malformed data_offsets"),
        ({"w": {"dtype": "F32", "shape": "four", "data_offsets": [0, 16]}}, "malformed shape"),
        ({"w": [1, 2]}, "tensor 'w' has no dtype"),
        ({"__metadata__": ["format"], "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, "__metadata__ is not an object of strings"),
        ({"__metadata__": {"format": 1}, "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, "__metadata__ is not an object of strings"),
    ],
)
def test_malformed_safetensors_headers(bare_project, capsys, one_line_error, header, expected):
    raw_safetensors(bare_project.root / "bad.safetensors", header)
    assert bare_project.run("test", "bad.safetensors", *ARCH, "-q") == 4
    line = one_line_error(capsys.readouterr().out)
    assert "corrupt safetensors file" in line and expected in line


def test_malformed_header_under_the_pytest_bridge(bare_project):
    raw_safetensors(bare_project.root / "bad.safetensors", {"w": {"dtype": "F32", "shape": [4], "data_offsets": "x"}})
    result = bare_project.pytest("safety_tests", "--safecompress-model", "bad.safetensors", "-q")
    output = result.stdout + result.stderr
    assert result.returncode == 4 and "malformed data_offsets" in output, output
    assert "Traceback" not in output and "INTERNALERROR" not in output


def artifact_declaring_a_huge_layer(path) -> None:
    """A real artifact whose header claims 2**28 weights for one layer (a 32 MB bitmask of zeros)."""
    real = path.parent / "real.safetensors"
    save_sparse_artifact(small_cnn(), real, arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10})
    from safetensors import safe_open

    with safe_open(str(real), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = load_file(str(real))
    layers = json.loads(metadata["layers"])
    layers["classifier.1.weight"] = {"shape": [2**14, 2**14], "dtype": "float32", "nnz": 0, "density": 0.0}
    tensors["values/classifier.1.weight"] = torch.zeros(0)
    tensors["mask/classifier.1.weight"] = torch.zeros(2**28 // 8, dtype=torch.uint8)
    metadata["layers"] = json.dumps(layers)
    path.write_bytes(serialize(tensors, metadata))  # a consistent checksum: the shape check must refuse it


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc")
@pytest.mark.parametrize("extra", [(), ARCH], ids=["recorded arch", "--arch"])
def test_declared_shapes_are_checked_before_unpacking(bare_project, extra):
    path = bare_project.root / "huge.safetensors"
    artifact_declaring_a_huge_layer(path)
    # VmHWM is this process's own peak (ru_maxrss would also count the parent it was forked from).
    code = (
        "import re, sys\n"
        "from safecompress.cli import main\n"
        f"code = main(['test', {str(path)!r}, *{list(extra)!r}, '-q'])\n"
        "status = open('/proc/self/status').read()\n"
        "print('MAXRSS_KB', re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=bare_project.root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "'classifier.1.weight' has shape (16384, 16384) in the artifact, (128, 3136) in the model" in result.stdout
    peak_mb = int(result.stdout.split("MAXRSS_KB")[1].split()[0]) / 1024
    assert peak_mb < 1500, f"peak memory {peak_mb:.0f} MB: the layer was unpacked (1 GB) before the shape check"


def test_an_artifact_loaded_with_another_num_classes(bare_project, capsys, one_line_error):
    save_sparse_artifact(small_cnn(num_classes=10), bare_project.root / "m.safetensors", arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10})
    assert bare_project.run("test", "m.safetensors", "--num-classes", "5", "-q") == 4
    assert "compressed with num_classes=10, but --num-classes 5 was given" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(bare_project, capsys, one_line_error, bad):
    model = small_cnn()
    with torch.no_grad():
        model.classifier[1].weight[0, 0] = bad
    torch.save(model.state_dict(), bare_project.root / "broken.pt")
    assert bare_project.run("test", "broken.pt", *ARCH, "-q") == 4
    assert "non-finite weights (1 NaN/Inf values in 'classifier.1.weight')" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/urandom", "/proc/self/status"])
def test_special_files_are_refused_without_hanging(bare_project, special):
    if special == "fifo":
        os.mkfifo(bare_project.root / "model.pt")
        special = "model.pt"
    result = bare_project.cli("test", special, *ARCH, "-q", timeout=120)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "not a regular file" in result.stdout or "is empty" in result.stdout, result.stdout


def test_a_fifo_inside_a_hugging_face_folder(bare_project):
    from safecompress.models import tiny_bert

    folder = bare_project.root / "hf"
    tiny_bert(num_classes=3, vocab_size=64, hidden_size=32, layers=1).save_pretrained(str(folder))
    (folder / "model.safetensors").unlink()
    os.mkfifo(folder / "model.safetensors")
    result = bare_project.cli("test", "hf", "-q", timeout=120)
    assert result.returncode == 4 and "not a regular file" in result.stdout, result.stdout + result.stderr
