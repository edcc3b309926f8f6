"""Checkpoints of a compression run: written atomically after every decision, read back with
``weights_only=True``, and accepted for ``--resume`` only by the run that wrote them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from safecompress.driver.identity import differences
from safecompress.errors import UsageError
from safecompress.fsutil import atomic_path, atomic_write_text

CHECKPOINT_FORMAT = "safecompress.checkpoint/1"


def save_checkpoint(path: Path, checkpoint: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(dict(checkpoint), tmp)


def load_checkpoint(path: Path, device: Any, settings: Mapping[str, Any], identity: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path``, refused with one line when it is missing, unreadable, or another
    run's (other settings, or another parent, thresholds, tests or data)."""
    if not path.is_file():
        raise UsageError(f"--resume: there is no checkpoint at {path} to resume from; run without --resume to start")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is a usage problem
        raise UsageError(f"cannot resume: {path} is unreadable ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"cannot resume: {path} is not a safecompress checkpoint")
    saved = json.loads(checkpoint["settings"])
    differing = sorted(k for k in set(saved) | set(settings) if k not in ("resume", "overwrite") and saved.get(k) != settings.get(k))
    if differing:
        raise UsageError(f"cannot resume: settings differ from the checkpoint's ({', '.join(differing)}); use the same options or a new --out")
    changed = differences(json.loads(checkpoint.get("identity", "{}")), identity)
    if changed:
        raise UsageError(f"cannot resume: this is not the run in the checkpoint, which differs in {'; '.join(changed)}; use the same inputs or a new --out")
    return checkpoint


def replay_decisions(path: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` logged decisions; the log is cut back to them (later lines were written
    after the checkpoint, by the run that was killed)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if len(lines) < count:
        raise UsageError(f"cannot resume: {path} has {len(lines)} decisions, the checkpoint expects {count}")
    kept = lines[:count]
    atomic_write_text(path, "".join(line + "\n" for line in kept))
    return [json.loads(line) for line in kept]


def read_decisions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
