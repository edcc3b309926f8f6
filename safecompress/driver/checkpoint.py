"""Checkpoints of a compression run: written atomically after every decision, read back with
``weights_only=True``, and accepted for ``--resume`` only by the run that wrote them.

The file is one line, ``safecompress-checkpoint sha256:<hex>``, then the ``torch.save`` bytes the
digest covers: a flipped byte anywhere is refused before anything is unpickled, where torch's own
zip reader let 7 of 20 random flips resume into a different model.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch

from safecompress.driver.identity import differences
from safecompress.driver.stream import TrainState
from safecompress.errors import UsageError
from safecompress.fsutil import NotRegularFileError, atomic_write_bytes, atomic_write_text, json_safe, open_regular
from safecompress.rngstate import capture_rng, restore_rng

if TYPE_CHECKING:
    from safecompress.driver.loop import CompressionLoop

CHECKPOINT_FORMAT = "safecompress.checkpoint/4"  # /4: a digest line before the torch.save bytes
_DIGEST_PREFIX = b"safecompress-checkpoint sha256:"


class CheckpointError(ValueError):
    """A checkpoint file that is damaged or not one; the message says what is wrong."""


def save_checkpoint(path: Path, checkpoint: Mapping[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(path, _DIGEST_PREFIX + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def read_checkpoint(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """The checkpoint dict in ``path``, its digest verified first; :class:`CheckpointError` else."""
    with path.open("rb") as stream:
        raw = stream.read()
    head, newline, payload = raw.partition(b"\n")
    if not newline or not head.startswith(_DIGEST_PREFIX):
        raise CheckpointError("it is not a safecompress checkpoint (no digest line)")
    if head.removeprefix(_DIGEST_PREFIX).decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
        raise CheckpointError("its digest does not match: the file is damaged")
    try:
        checkpoint = torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bytes it cannot read
        raise CheckpointError(f"it is unreadable ({type(exc).__name__})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("format"), str):
        raise CheckpointError("it is not a safecompress checkpoint")
    return checkpoint


def load_checkpoint(path: Path, device: Any, settings: Mapping[str, Any], identity: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path``, refused with one line when it is missing, damaged, or another
    run's (other settings, or another parent, thresholds, tests or data)."""
    if not path.is_file():
        raise UsageError(f"--resume: there is no checkpoint at {path} to resume from; run without --resume to start")
    try:
        checkpoint = read_checkpoint(path, device)
    except (CheckpointError, OSError) as exc:
        raise UsageError(f"cannot resume: {path}: {exc}; start over with --overwrite") from None
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        raise UsageError(f"cannot resume: {path} was written by another safecompress version ({checkpoint['format']}); start over with --overwrite")
    try:
        saved = json.loads(checkpoint["settings"])
        recorded_identity = json.loads(checkpoint.get("identity", "{}"))
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"cannot resume: {path} is not a complete safecompress checkpoint; start over with --overwrite") from None
    if not isinstance(saved, dict) or not isinstance(recorded_identity, dict):
        raise UsageError(f"cannot resume: {path} is not a complete safecompress checkpoint; start over with --overwrite")
    differing = sorted(k for k in set(saved) | set(settings) if k not in ("resume", "overwrite") and saved.get(k) != settings.get(k))
    if differing:
        raise UsageError(f"cannot resume: settings differ from the checkpoint's ({', '.join(differing)}); use the same options or a new --out")
    changed = differences(recorded_identity, identity)
    if changed:
        raise UsageError(f"cannot resume: this is not the run in the checkpoint, which differs in {'; '.join(changed)}; use the same inputs or a new --out")
    return checkpoint


def checkpoint_attempt(path: Path) -> Optional[int]:
    """The attempt a checkpoint belongs to, or None when there is no readable one of this format
    (:func:`load_checkpoint` then says what is wrong)."""
    if not path.is_file():
        return None
    try:
        checkpoint = read_checkpoint(path)
    except (CheckpointError, OSError):  # load_checkpoint reports it
        return None
    attempt = checkpoint.get("attempt")
    if checkpoint.get("format") != CHECKPOINT_FORMAT or not isinstance(attempt, int) or attempt < 1:
        return None
    return attempt


def replay_decisions(path: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` logged decisions; the log is cut back to them (later lines were written
    after the checkpoint, by the run that was killed)."""
    lines = _log_lines(path)
    if len(lines) < count:
        raise UsageError(f"cannot resume: {path} has {len(lines)} decisions, the checkpoint expects {count}")
    kept = lines[:count]
    decisions = []
    for number, line in enumerate(kept, 1):
        try:
            decision = json.loads(line)
        except ValueError:
            decision = None
        if not isinstance(decision, dict) or not isinstance(decision.get("kind"), str):
            raise UsageError(f"cannot resume: line {number} of {path} is not a logged decision; start over with --overwrite")
        decisions.append(decision)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
    return decisions


def _log_lines(path: Path) -> list[str]:
    """The lines of the decision log, read without following a link or blocking on a FIFO."""
    try:
        fd = open_regular(path, follow_links=False)
    except FileNotFoundError:
        return []
    except NotRegularFileError:
        raise UsageError(f"cannot resume: {path} is not a regular file (a folder, FIFO or device)") from None
    except OSError as exc:
        raise UsageError(f"cannot resume: cannot read {path} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as stream:
        raw = stream.read()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"cannot resume: {path} is not UTF-8 text; start over with --overwrite") from None


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
    try:
        restore_loop(loop, checkpoint)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:  # a field of the wrong kind
        raise UsageError(f"cannot resume: {loop.checkpoint_path} does not hold this run's state ({type(exc).__name__}); start over with --overwrite") from None
    logged = [d for d in replay_decisions(loop.decisions_path, loop.state.decisions) if d.get("attempt") == loop.attempt]
    loop.decisions = [d for d in logged if d["kind"] == "update"]
    loop.final_checks = [d for d in logged if d["kind"] == "final-check"]
    timers = checkpoint.get("timers", {})
    loop.timers = type(loop.timers)(timers.get("train_s", 0.0), timers.get("probe_s", 0.0), timers.get("tests_s", 0.0))
    return checkpoint
