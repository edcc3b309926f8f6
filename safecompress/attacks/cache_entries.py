"""Cached reference models are untrusted input: an entry is used only when it proves it is ours.

A reference cache lives in a folder that CI systems restore from shared storage, that other jobs
can write, and that outlives the run that filled it. A tampered entry would change every LiRA and
RMIA verdict computed with it (a reference with NaN weights made RMIA report AUC 0.5 and pass a
gate that should fail), so each entry is a safetensors file whose metadata carries:

- the cache key it was trained for (recipe, data fingerprint and seed, hashed by ``reference.py``);
- an HMAC-SHA256, under a secret that never lives in the cache folder, over that key and a digest of
  every tensor's name, dtype, shape and bytes.

Reading opens the file without following a symlink and without blocking on a FIFO, refuses
anything but a regular file of the expected size, checks the key, the MAC, the tensor names, shapes
and dtypes against the model it is meant for, and that every weight is finite. Any failure is a
:class:`CacheEntryError`; the caller retrains over the entry.

The secret is ``$SAFECOMPRESS_CACHE_SECRET`` when set (give CI jobs that share a cache the same
secret, stored as a CI secret), else a random one created on first use in
``$XDG_CONFIG_HOME/safecompress/cache-secret`` (``~/.config/...``), readable by its owner only.
Whoever can read the secret can forge entries: keep it out of shared storage.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Mapping, Optional

import torch

from safecompress.fsutil import NotRegularFileError, atomic_write_bytes, read_regular_bytes

log = logging.getLogger(__name__)

SECRET_ENV = "SAFECOMPRESS_CACHE_SECRET"
ENTRY_FORMAT = "safecompress.reference/1"
_HEADER_SLACK = 1 << 20  # the safetensors header of a state dict: names, shapes, offsets, metadata


class CacheEntryError(ValueError):
    """A cache entry that is not this key's own intact entry; the message says what is wrong."""


def secret_path() -> Path:
    root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "safecompress" / "cache-secret"


def cache_secret() -> Optional[bytes]:
    """The MAC secret (see the module docstring), created on first use; None when there is none to
    be had (an unwritable home): then no entry is trusted and none is written."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env.encode()
    path = secret_path()
    try:
        return _read_small_regular(path, 4096)
    except FileNotFoundError:
        pass
    except (OSError, CacheEntryError) as exc:
        log.warning("reference cache disabled: cannot read its secret %s (%s)", path, getattr(exc, "strerror", None) or exc)
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(os.urandom(32).hex())
        return _read_small_regular(path, 4096)
    except FileExistsError:  # another process created it first
        return _read_small_regular(path, 4096)
    except (OSError, CacheEntryError) as exc:
        log.warning("reference cache disabled: cannot create its secret %s (%s)", path, getattr(exc, "strerror", None) or exc)
        return None


def _read_small_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (never a link's target, never a FIFO), at most ``limit``."""
    try:
        return read_regular_bytes(path, limit, follow_links=False)
    except NotRegularFileError:
        raise CacheEntryError(f"{path.name} is not a regular file (a FIFO, device or socket)") from None
    except ValueError:
        raise CacheEntryError(f"{path.name} is larger than {limit} bytes") from None


def _content_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{str(tensor.dtype)}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _mac(secret: bytes, key: str, content: str) -> str:
    return hmac.new(secret, f"{ENTRY_FORMAT}\n{key}\n{content}".encode(), hashlib.sha256).hexdigest()


def write_entry(path: Path, key: str, state: Mapping[str, torch.Tensor]) -> bool:
    """Write ``state`` as the entry of ``key`` (atomically); False when it is not cached (no secret,
    or non-finite weights: a diverged reference must not be reused)."""
    from safetensors.torch import save

    tensors = {name: value.detach().cpu().clone().contiguous() for name, value in state.items()}  # clone: tied tensors
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors.values()):
        log.warning("not caching reference %s: it has non-finite weights", path.name)
        return False
    secret = cache_secret()
    if secret is None:
        return False
    metadata = {"format": ENTRY_FORMAT, "key": key, "mac": _mac(secret, key, _content_digest(tensors))}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return True


def read_entry(path: Path, key: str, expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict cached for ``key`` at ``path``, shaped like ``expected``.

    Raises FileNotFoundError when there is no entry, :class:`CacheEntryError` for any entry that is
    not ``key``'s own, intact, finite and of ``expected``'s names, shapes and dtypes.
    """
    from safetensors.torch import load

    limit = sum(t.numel() * t.element_size() for t in expected.values()) + _HEADER_SLACK
    try:
        data = _read_small_regular(path, limit)
    except (FileNotFoundError, CacheEntryError):
        raise
    except OSError as exc:  # ELOOP: a symlink; EACCES; EIO
        raise CacheEntryError(f"cannot open it safely ({exc.strerror or exc})") from None
    metadata = _metadata(data)
    if metadata.get("format") != ENTRY_FORMAT or metadata.get("key") != key:
        raise CacheEntryError("it is not the entry of this recipe, data and seed")
    try:
        tensors = load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for damaged bytes
        raise CacheEntryError(f"it is not a readable safetensors file ({exc})") from None
    secret = cache_secret()
    if secret is None or not hmac.compare_digest(str(metadata.get("mac", "")), _mac(secret, key, _content_digest(tensors))):
        raise CacheEntryError("its MAC does not match: it was changed, or written under another secret")
    if set(tensors) != set(expected):
        raise CacheEntryError("its tensors are not the model's")
    for name, value in expected.items():
        stored = tensors[name]
        if stored.shape != value.shape or stored.dtype != value.dtype:
            raise CacheEntryError(f"{name!r} is {stored.dtype} {tuple(stored.shape)}, the model's is {value.dtype} {tuple(value.shape)}")
        if stored.is_floating_point() and not bool(torch.isfinite(stored).all()):
            raise CacheEntryError(f"{name!r} has non-finite weights")
    return tensors


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (already bounded by the caller)."""
    length = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if length < 2 or 8 + length > len(data):
        raise CacheEntryError("it is not a safetensors file")
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CacheEntryError("its header is not valid JSON") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise CacheEntryError("it carries no metadata")
    return metadata
