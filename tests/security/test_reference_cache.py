"""The reference cache is untrusted input: a tampered entry is retrained over, never scored.

Regression (N2): multiplying one weight of each cached reference by NaN (or storing the target's
own weights there) turned ``audit --attack rmia --fail-above`` from AUC 0.69, exit 1 into AUC 0.500
[0.500, 0.500], exit 0, without a warning.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from safecompress.attacks import AttackInputs
from safecompress.attacks.cache_entries import CacheEntryError, read_entry, write_entry

sys.path.insert(0, str(Path(__file__).parent.parent))
from test_audit import digits_project  # noqa: E402

AUDIT = ("audit", "digits.pt", "--attack", "rmia", "--refs", "2", "--json", "audit.json")


@pytest.fixture
def cached_project(project, tmp_path, monkeypatch):
    """A digits project audited once, so the cache holds its two references."""
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("SAFECOMPRESS_CACHE_SECRET", raising=False)
    digits_project(project)
    assert project.run(*AUDIT) in (0, 1)
    return project


def audit_auc(project, *extra) -> tuple[int, float]:
    code = project.run(*AUDIT, *extra)
    return code, json.loads((project.root / "audit.json").read_text())["auc"]["value"]


def entries(tmp_path) -> list[Path]:
    found = sorted((tmp_path / "cache" / "refs").glob("*.safetensors"))
    assert len(found) == 2
    return found


def rewrite_keeping_metadata(path: Path, change) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)


def nan_weight(tensors) -> None:
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name].view(-1)[0] = float("nan")


def target_weights(tensors) -> None:
    target = torch.load(TARGET[0], weights_only=True)
    tensors.update({k: v.clone() for k, v in target.items()})


TARGET: list[Path] = []


@pytest.mark.parametrize("tamper", [nan_weight, target_weights], ids=["NaN weight", "the target's weights"])
def test_a_tampered_entry_cannot_change_the_verdict(cached_project, tmp_path, caplog, tamper):
    code, clean_auc = audit_auc(cached_project, "--fail-above", "0.5")
    TARGET[:] = [cached_project.root / "digits.pt"]
    for path in entries(tmp_path):
        rewrite_keeping_metadata(path, tamper)
    assert audit_auc(cached_project, "--fail-above", "0.5") == (code, clean_auc)
    assert "retraining over the cached reference" in caplog.text and "MAC does not match" in caplog.text


def test_links_and_fifos_in_the_cache_are_not_followed(cached_project, tmp_path, caplog):
    code, clean_auc = audit_auc(cached_project)
    first, second = entries(tmp_path)
    decoy = tmp_path / "decoy.safetensors"
    decoy.write_bytes(second.read_bytes())
    first.unlink()
    first.symlink_to(decoy)
    second.unlink()
    os.mkfifo(second)
    assert audit_auc(cached_project) == (code, clean_auc)  # a FIFO would block a plain open()
    assert "cannot open it safely" in caplog.text and "not a regular file" in caplog.text
    assert not first.is_symlink() and second.is_file()  # retrained and replaced, the decoy untouched
    assert decoy.read_bytes() != first.read_bytes()


def test_an_entry_is_checked_against_key_shape_and_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFECOMPRESS_CACHE_SECRET", "one")
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "entry.safetensors"
    assert write_entry(path, "k1", model.state_dict())
    assert torch.equal(read_entry(path, "k1", model.state_dict())["weight"], model.weight)
    with pytest.raises(CacheEntryError, match="not the entry of this recipe"):
        read_entry(path, "k2", model.state_dict())
    with pytest.raises(CacheEntryError, match="the model.s is"):
        read_entry(path, "k1", torch.nn.Linear(2, 2).state_dict())
    monkeypatch.setenv("SAFECOMPRESS_CACHE_SECRET", "two")
    with pytest.raises(CacheEntryError, match="MAC does not match"):
        read_entry(path, "k1", model.state_dict())
    with pytest.raises(FileNotFoundError):
        read_entry(tmp_path / "missing.safetensors", "k1", model.state_dict())
    model.weight.data[0, 0] = float("inf")
    assert not write_entry(tmp_path / "diverged.safetensors", "k1", model.state_dict())


def test_the_default_secret_is_private_and_outside_the_cache(tmp_path, monkeypatch):
    from safecompress.attacks.cache_entries import cache_secret, secret_path

    monkeypatch.delenv("SAFECOMPRESS_CACHE_SECRET", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    secret = cache_secret()
    assert secret and cache_secret() == secret and len(secret) == 64
    assert secret_path().stat().st_mode & 0o777 == 0o600


def test_non_finite_outputs_are_an_error_not_auc_one_half():
    logits = np.zeros((4, 2), dtype=np.float32)
    ok = dict(labels=[0, 1, 0, 1], membership=[1, 1, 0, 0], role=[1, 1, 1, 1])
    AttackInputs(logits=logits, **ok)
    with pytest.raises(ValueError, match="ref_logits contain NaN"):
        AttackInputs(logits=logits, ref_logits=np.full((1, 4, 2), np.nan, dtype=np.float32), **ok)
    with pytest.raises(ValueError, match="logits contain NaN"):
        AttackInputs(logits=np.full((4, 2), np.inf, dtype=np.float32), **ok)
