"""Checkpoints of a compression run: written atomically after every decision, read back with
``weights_only=True``, and accepted for ``--resume`` only by the run that wrote them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch

from safecompress.driver.identity import differences
from safecompress.driver.stream import TrainState
from safecompress.errors import UsageError
from safecompress.fsutil import atomic_path, atomic_write_text, json_safe
from safecompress.rngstate import capture_rng, restore_rng

if TYPE_CHECKING:
    from safecompress.driver.loop import CompressionLoop

CHECKPOINT_FORMAT = "safecompress.checkpoint/3"  # /3: attempts, the shipping record, the baseline decision


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
    if not isinstance(checkpoint, dict) or not str(checkpoint.get("format", "")).startswith("safecompress.checkpoint/"):
        raise UsageError(f"cannot resume: {path} is not a safecompress checkpoint")
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        raise UsageError(f"cannot resume: {path} was written by another safecompress version ({checkpoint['format']}); start over with --overwrite")
    saved = json.loads(checkpoint["settings"])
    differing = sorted(k for k in set(saved) | set(settings) if k not in ("resume", "overwrite") and saved.get(k) != settings.get(k))
    if differing:
        raise UsageError(f"cannot resume: settings differ from the checkpoint's ({', '.join(differing)}); use the same options or a new --out")
    changed = differences(json.loads(checkpoint.get("identity", "{}")), identity)
    if changed:
        raise UsageError(f"cannot resume: this is not the run in the checkpoint, which differs in {'; '.join(changed)}; use the same inputs or a new --out")
    return checkpoint


def checkpoint_attempt(path: Path) -> Optional[int]:
    """The attempt a checkpoint belongs to, or None when there is no readable one of this format
    (:func:`load_checkpoint` then says what is wrong)."""
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - load_checkpoint reports it
        return None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        return None
    return int(checkpoint["attempt"])


def replay_decisions(path: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` logged decisions; the log is cut back to them (later lines were written
    after the checkpoint, by the run that was killed)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if len(lines) < count:
        raise UsageError(f"cannot resume: {path} has {len(lines)} decisions, the checkpoint expects {count}")
    kept = lines[:count]
    atomic_write_text(path, "".join(line + "\n" for line in kept))
    return [json.loads(line) for line in kept]


def capture_loop(loop: "CompressionLoop") -> dict[str, Any]:
    """Everything a resume needs: weights, optimizer, engine, stream position, every RNG state,
    remedies, the shipping record, the attempt, and what makes the run this run."""
    return {
        "format": CHECKPOINT_FORMAT,
        "settings": json.dumps(loop.settings.run_defining(), sort_keys=True),
        "identity": json.dumps(loop.identity, sort_keys=True),
        "state": loop.state.to_dict(),
        "model": {k: v.detach().clone() for k, v in loop.model.state_dict().items()},
        "optimizer": copy.deepcopy(loop.optimizer.state_dict()),
        "engine": copy.deepcopy(loop.engine.state_dict()),
        "shuffle": loop.shuffle.get_state(),
        "augment": loop.augment_rng.get_state(),
        "rng": capture_rng(),
        **loop.steering.state_dict(),
        "timers": loop.timers.to_dict(),
        "attempt": loop.attempt,
        "log_offset": loop.log_offset,
        "earlier_attempts": json.dumps(json_safe(loop.earlier_attempts)),
        "baseline_decision": json.dumps(json_safe(loop.baseline_decision)),
        "shipping": loop.shipping.state_dict(),
    }


def restore_loop(loop: "CompressionLoop", checkpoint: dict[str, Any]) -> None:
    """Put ``loop`` back where :func:`capture_loop` found it (after a resume or a rollback)."""
    loop.state = TrainState.from_dict(checkpoint["state"])
    loop.model.load_state_dict(checkpoint["model"])
    loop.optimizer.load_state_dict(copy.deepcopy(checkpoint["optimizer"]))
    loop.engine.load_state_dict(checkpoint["engine"])
    loop.shuffle.set_state(checkpoint["shuffle"].cpu())
    loop.augment_rng.set_state(checkpoint["augment"].cpu() if loop.device.type == "cpu" else checkpoint["augment"])
    restore_rng(checkpoint["rng"])
    loop.steering.load_state_dict(checkpoint)
    loop.attempt = int(checkpoint["attempt"])
    loop.log_offset = int(checkpoint["log_offset"])
    loop.earlier_attempts = json.loads(checkpoint["earlier_attempts"])
    loop.baseline_decision = json.loads(checkpoint["baseline_decision"])
    loop.shipping.load_state_dict(checkpoint["shipping"], loop.settings.lambda_)
    loop.apply_lr_scale()


def resume_loop(loop: "CompressionLoop") -> dict[str, Any]:
    """Continue ``loop`` from its checkpoint: the state, the decisions logged up to it, the timers;
    returns the checkpoint (the loop's rollback point)."""
    checkpoint = load_checkpoint(loop.checkpoint_path, loop.device, loop.settings.run_defining(), loop.identity)
    restore_loop(loop, checkpoint)
    logged = [d for d in replay_decisions(loop.decisions_path, loop.state.decisions) if d.get("attempt") == loop.attempt]
    loop.decisions = [d for d in logged if d["kind"] == "update"]
    loop.final_checks = [d for d in logged if d["kind"] == "final-check"]
    timers = checkpoint.get("timers", {})
    loop.timers = type(loop.timers)(timers.get("train_s", 0.0), timers.get("probe_s", 0.0), timers.get("tests_s", 0.0))
    return checkpoint
