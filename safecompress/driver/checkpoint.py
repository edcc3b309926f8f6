"""Checkpoints of a compression run: written atomically after every decision, read back with
``weights_only=True``, and accepted for ``--resume`` only by the run that wrote them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from safecompress.driver.identity import differences
from safecompress.driver.selection import Candidate, score_candidate
from safecompress.driver.stream import TrainState
from safecompress.errors import UsageError
from safecompress.fsutil import atomic_path, atomic_write_text
from safecompress.rngstate import capture_rng, restore_rng
from safecompress.runner.reports import TestReport

if TYPE_CHECKING:
    from safecompress.driver.loop import CompressionLoop

CHECKPOINT_FORMAT = "safecompress.checkpoint/2"  # /2: every generator's state (rngstate.capture_rng)


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
    remedies, the best final checkpoint so far, and what makes the run this run."""
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
        "best": None
        if loop.best is None
        else {
            "step": loop.best_step,
            "name": loop.best.name,
            "reports": json.dumps([r.to_dict() for r in loop.best.reports]),
            "weights": loop.best_weights,
        },
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
    best = checkpoint.get("best")
    loop.best, loop.best_step, loop.best_weights = None, None, None
    if best is not None:
        loop.best = Candidate(best["name"], None, [TestReport.from_dict(r) for r in json.loads(best["reports"])])
        score_candidate(loop.best, loop.settings.lambda_)
        loop.best_step = int(best["step"])
        loop.best_weights = {k: v.detach().clone() for k, v in best["weights"].items()}
    loop.apply_lr_scale()


def resume_loop(loop: "CompressionLoop") -> dict[str, Any]:
    """Continue ``loop`` from its checkpoint: the state, the decisions logged up to it, the timers;
    returns the checkpoint (the loop's rollback point)."""
    checkpoint = load_checkpoint(loop.checkpoint_path, loop.device, loop.settings.run_defining(), loop.identity)
    restore_loop(loop, checkpoint)
    logged = replay_decisions(loop.decisions_path, loop.state.decisions)
    loop.decisions = [d for d in logged if d.get("kind", "update") == "update"]
    loop.final_checks = [d for d in logged if d.get("kind") == "final-check"]
    timers = checkpoint.get("timers", {})
    loop.timers = type(loop.timers)(timers.get("train_s", 0.0), timers.get("probe_s", 0.0), timers.get("tests_s", 0.0))
    return checkpoint
