"""Integrity of what we write and read back: the artifact and the checkpoint.

Regressions (N10, N12): a header dtype F32 -> I32 on one bias loaded a different model and passed
(the checksum covered tensor bytes, not the header); 7 of 20 random byte flips in ``checkpoint.pt``
resumed into a different final model with exit 0; identical runs wrote artifacts whose bytes
differed (the safetensors library writes its metadata from a hash map).

The two fuzzers are the issue's bounded form: 200 seeded mutants each, every outcome one line and
exit 4 (a UsageError here) or the identical model; never another exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from safecompress.driver.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from safecompress.errors import UsageError
from safecompress.modelio import load_model
from safecompress.models import small_cnn
from safecompress.sparse import save_sparse_artifact
from safecompress.sparse.artifact import _crc32

ARCH = "safecompress.models:small_cnn"
MUTANTS = 200


def small_artifact(path, seed: int = 0):
    torch.manual_seed(seed)
    model = small_cnn(width=4).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.mul_(torch.rand_like(module.weight) > 0.7)
    save_sparse_artifact(model, path, arch=ARCH, arch_kwargs={"num_classes": 10, "width": 4})
    return model


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def header_span(raw: bytes) -> tuple[int, int]:
    return 8, 8 + int.from_bytes(raw[:8], "little")


def test_a_header_dtype_edit_is_caught(tmp_path):
    path = tmp_path / "m.safetensors"
    small_artifact(path)
    raw = path.read_bytes()
    start, end = header_span(raw)
    header = raw[start:end]
    at = header.index(b'"dtype":"F32"', header.index(b'"dense/features.0.bias":')) + len('"dtype":"')
    path.write_bytes(raw[: start + at] + b"I32" + raw[start + at + 3 :])  # same length: only the checksum can tell
    with pytest.raises(UsageError, match="checksum mismatch"):
        load_model(path)


def test_a_version_1_artifact_still_loads_and_its_dtypes_are_checked(tmp_path):
    """Version 1 (crc32 over tensor bytes only) loads; the dtype check closes the header edit."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m.safetensors"
    model = small_artifact(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = {k: v for k, v in f.metadata().items() if k != "sha256"}
    tensors = load_file(str(path))
    old = tmp_path / "v1.safetensors"
    save_file(tensors, str(old), metadata={**metadata, "format_version": "1", "crc32": _crc32(tensors)})
    assert same_state(model, load_model(old))
    tensors["dense/features.0.bias"] = tensors["dense/features.0.bias"].view(torch.int32)
    save_file(tensors, str(old), metadata={**metadata, "format_version": "1", "crc32": _crc32(tensors)})
    with pytest.raises(UsageError, match="has dtype torch.int32 in the artifact, torch.float32 in the model"):
        load_model(old)


SAVE_IN_A_FRESH_PROCESS = """
import sys, torch
from safecompress.models import small_cnn
from safecompress.sparse import save_sparse_artifact
torch.manual_seed(0)
save_sparse_artifact(small_cnn(width=4), sys.argv[1], arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10, "width": 4}, extra_metadata={"parent": "p.pt"})
"""


def test_identical_inputs_write_identical_artifact_bytes(tmp_path):
    """Two processes (each with its own hash seed) write the same bytes, readable by the library."""
    from safetensors.torch import load_file

    for name, seed in (("a", "1"), ("b", "2")):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", SAVE_IN_A_FRESH_PROCESS, str(tmp_path / f"{name}.safetensors")], env=env, check=True, timeout=120)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert set(load_file(str(tmp_path / "a.safetensors"))) >= {"values/features.0.weight", "mask/features.0.weight"}
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def mutate(raw: bytes, rng: np.random.Generator, header: tuple[int, int]) -> bytes:
    """One seeded mutation: byte flips (some only in ``header``), a cut, an insertion or a run of noise."""
    data = bytearray(raw)
    start, end = header
    kind = rng.integers(5)
    if kind <= 1:  # flip 1-3 bytes, in the header or anywhere
        low, high = (start, end) if kind == 0 else (0, len(data))
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(low, high))] ^= int(rng.integers(1, 256))
    elif kind == 2:
        del data[int(rng.integers(1, len(data))) :]
    elif kind == 3:
        at = int(rng.integers(0, len(data)))
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    else:
        at = int(rng.integers(0, len(data) - 16))
        data[at : at + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    return bytes(data)


def test_fuzzed_artifacts_are_refused_in_one_line_or_identical(tmp_path):
    original = tmp_path / "original.safetensors"
    model = small_artifact(original)
    raw = original.read_bytes()
    rng = np.random.default_rng(20261207)
    outcomes = {"refused": 0, "identical": 0}
    for index in range(MUTANTS):
        mutant = tmp_path / "mutant.safetensors"
        mutant.write_bytes(mutate(raw, rng, header_span(raw)))
        try:
            loaded = load_model(mutant)
        except UsageError as exc:
            assert "\n" not in str(exc) and str(exc), f"mutant {index}: {exc!r}"
            outcomes["refused"] += 1
        else:
            assert same_state(model, loaded), f"mutant {index} loaded a different model"
            outcomes["identical"] += 1
    assert outcomes["refused"] >= MUTANTS * 0.9, outcomes


def test_fuzzed_checkpoints_are_refused_or_identical(tmp_path):
    """The checkpoint reader under 200 mutants: a CheckpointError, or exactly the saved contents."""
    torch.manual_seed(0)
    model = small_cnn(width=4)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    saved = {"format": "safecompress.checkpoint/4", "model": model.state_dict(), "optimizer": optimizer.state_dict(), "attempt": 1, "settings": json.dumps({})}
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, saved)
    raw = path.read_bytes()
    reference = read_checkpoint(path)
    rng = np.random.default_rng(7)
    refused = 0
    for index in range(MUTANTS):
        path.write_bytes(mutate(raw, rng, (0, raw.index(b"\n") + 1)))
        try:
            loaded = read_checkpoint(path)
        except CheckpointError as exc:
            assert "\n" not in str(exc), f"mutant {index}: {exc!r}"
            refused += 1
        else:
            assert loaded.keys() == reference.keys() and all(torch.equal(loaded["model"][k], reference["model"][k]) for k in reference["model"]), index
    assert refused >= MUTANTS * 0.95


def test_a_resume_from_a_damaged_checkpoint_is_one_line(tmp_path):
    from safecompress.driver.checkpoint import load_checkpoint

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"format": "safecompress.checkpoint/4", "settings": "{}"})
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(UsageError, match="digest does not match"):
        load_checkpoint(path, "cpu", {}, {})
    save_checkpoint(path, {"format": "safecompress.checkpoint/4", "settings": 7})
    with pytest.raises(UsageError, match="not a complete safecompress checkpoint"):
        load_checkpoint(path, "cpu", {}, {})
