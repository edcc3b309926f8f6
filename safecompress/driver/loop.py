"""The compression loop: dynamic sparse training whose topology updates are decided by safety tests.

At every scheduled update (METHOD.md §3): propose N candidate masks from the current weights
(refactor), fine-tune each for a few probe steps from a snapshot and run the cheap safety tests on it
(test), let the ``safecompress_select_candidate`` hook pick the survivor (select), let the survivor's
red tests switch on their remedies (steer), restore the snapshot, apply the survivor and train on
(retrain). After the last update the topology is final, and the cheap tests keep running at
``final_checks`` evenly spaced steps; the ``safecompress_select_candidate`` hook keeps the better of
each checkpoint and the best so far, and that checkpoint ships: the model a user gets is one the tests
have judged, not whatever the last steps of a min-max defense left behind. Every update and final
check is logged to ``decisions.jsonl`` (``kind``) and checkpointed, so ``--resume`` after a kill
finishes bit-identically on the CPU.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from safecompress.data.splits import DataSplits
from safecompress.driver.identity import differences
from safecompress.driver.selection import Candidate, score_candidate
from safecompress.driver.settings import CompressSettings
from safecompress.driver.steering import RemedyController
from safecompress.errors import SafeCompressError, UsageError
from safecompress.fsutil import append_line, atomic_path, atomic_write_text, json_safe
from safecompress.inference import model_logits
from safecompress.remedies import RemedyContext
from safecompress.runner.reports import TestReport
from safecompress.runner.session import SafetySession
from safecompress.sparse import GrowthSpec, PruneSchedule, SparseEngine
from safecompress.training import TrainRecipe

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "safecompress.checkpoint/1"
PRUNE_FACTORS = (1.0, 1.5, 0.5, 1.0, 2.0, 0.75)
MAX_ROLLBACKS = 3


class DivergedError(SafeCompressError):
    """Training kept producing NaN/inf after repeated rollbacks."""


@dataclass
class Timers:
    """Where the time went; ``overhead`` is the share of the loop's time spent probing and testing
    candidates (what the safety loop costs beyond plain sparse training)."""

    train: float = 0.0
    probe: float = 0.0
    tests: float = 0.0

    @property
    def overhead(self) -> float:
        total = self.train + self.probe + self.tests
        return (self.probe + self.tests) / total if total else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"train_s": round(self.train, 3), "probe_s": round(self.probe, 3), "tests_s": round(self.tests, 3), "overhead_fraction": round(self.overhead, 4)}


@dataclass
class TrainState:
    """Position in the data stream: enough, with the RNG states, to resume bit-identically."""

    step: int = 0
    epoch: int = 0
    position: int = 0
    order: Optional[torch.Tensor] = None
    lr_scale: float = 1.0
    rollbacks: int = 0
    decisions: int = 0


@dataclass
class LoopResult:
    model: nn.Module
    engine: SparseEngine
    decisions: list[dict[str, Any]]
    timers: Timers
    remedy_weights: dict[str, float]
    events: list[str] = field(default_factory=list)
    final_checks: list[dict[str, Any]] = field(default_factory=list)
    shipped_step: Optional[int] = None  # the final check that ships; None: the last step's weights


def candidate_specs(settings: CompressSettings, prune_fraction: float, update: int) -> list[GrowthSpec]:
    """N growth strategies; with ``vary_prune`` they also replace different shares of the weights,
    because candidates differing only in growth rule are nearly indistinguishable to a test."""
    specs = []
    strategies = list(settings.strategies)
    for i in range(settings.candidates):
        growth, _, seed_text = strategies[i % len(strategies)].partition(":")
        seed = (int(seed_text) if seed_text else None) if i < len(strategies) else i
        fraction = None
        if settings.vary_prune:
            fraction = min(1.0, prune_fraction * PRUNE_FACTORS[i % len(PRUNE_FACTORS)])
        spec = GrowthSpec(growth, seed=seed, prune_fraction=fraction)  # type: ignore[arg-type]
        specs.append(GrowthSpec(spec.growth, spec.seed, spec.prune_fraction, name=f"{spec.label}#{i}"))
    return specs


class CompressionLoop:
    """One run of test-driven dynamic sparse training on ``model`` (a copy of the dense parent)."""

    def __init__(
        self,
        session: SafetySession,
        parent: nn.Module,
        data: DataSplits,
        recipe: TrainRecipe,
        settings: CompressSettings,
        remedy_factories: dict[str, Callable[[RemedyContext], Any]],
        on_event: Optional[Callable[[str, dict[str, Any]], None]] = None,
        identity: Optional[dict[str, Any]] = None,
    ) -> None:
        self.session = session
        self.identity = dict(identity or {})  # parent, thresholds, tests, data: a resume must match it
        self.data = data
        self.recipe = recipe
        self.settings = settings
        self.device = session.device
        self.remedy_factories = remedy_factories
        self.on_event = on_event or (lambda kind, payload: None)
        self.out = settings.out
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.decisions_path = self.out / "decisions.jsonl"
        self.members = data.members
        self.epochs = settings.epochs or recipe.epochs
        self.batch_size = recipe.batch_size
        full, tail = divmod(len(self.members), self.batch_size)
        self.steps_per_epoch = full + (1 if tail > 1 or (tail == 1 and full == 0) else 0)  # a 1-sample tail is skipped
        self.total_steps = self.epochs * self.steps_per_epoch
        torch.manual_seed(settings.seed)
        self.model = copy.deepcopy(parent).to(self.device).train()
        self.optimizer = recipe.make_optimizer(self.model.parameters())
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        growth_rules = {s.partition(":")[0] for s in settings.strategies}
        self.schedule = PruneSchedule(self.total_steps, num_updates=settings.updates, stop_fraction=settings.stop_fraction)
        self.engine = SparseEngine(
            self.model,
            self.optimizer,
            settings.density,
            distribution=settings.distribution,  # type: ignore[arg-type]
            init=settings.init,  # type: ignore[arg-type]
            schedule=self.schedule,
            seed=settings.seed,
            auto_update=False,
            extra_growth=tuple(sorted(growth_rules - {"random"})),  # type: ignore[arg-type]
        )
        self.shuffle = torch.Generator().manual_seed(settings.seed)
        self.controller = RemedyController()
        self.remedies: dict[str, Any] = {}
        self.remedy_options: dict[str, dict[str, Any]] = {}
        self.state = TrainState()
        self.timers = Timers()
        self.decisions: list[dict[str, Any]] = []
        self.final_checks: list[dict[str, Any]] = []
        self.final_check_steps = final_check_steps(self.schedule, settings.final_checks)
        self.best: Optional[Candidate] = None  # the best final check so far (its weights in ``best_weights``)
        self.best_step: Optional[int] = None
        self.best_weights: Optional[dict[str, torch.Tensor]] = None
        self.events: list[str] = []
        self._memory_checkpoint: Optional[dict[str, Any]] = None

    # --- training steps --------------------------------------------------------------------------
    def _loss(self, x: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model_logits(self.model, x)
        task = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        total = task
        for name, weight in self.controller.weights().items():
            if weight > 0 and name in self.remedies:
                total = total + weight * self.remedies[name].loss(self.model, x, logits, y)
        return task, total

    def _train_step(self, x: Any, y: torch.Tensor) -> Optional[float]:
        """One optimizer step; returns the task loss, or None when the loss was not finite."""
        if self.recipe.augment is not None:
            x = self.recipe.augment(x, self._augment_rng)
        self.optimizer.zero_grad(set_to_none=True)
        task, total = self._loss(x, y)
        if not bool(torch.isfinite(total)):
            return None
        total.backward()
        self.optimizer.step()
        self.engine.step()
        return float(task.detach())

    def _batch(self, rows: torch.Tensor) -> tuple[Any, torch.Tensor]:
        inputs = self.members.inputs
        if isinstance(inputs, Mapping):
            x: Any = {k: v[rows].to(self.device) for k, v in inputs.items()}
        else:
            x = inputs[rows].to(self.device)
        return x, self.members.labels[rows].to(self.device)

    # --- the update ------------------------------------------------------------------------------
    def _probe(self, update: int, index: int) -> float:
        """A few steps on member batches drawn by their own generator, so probes never shift the main stream."""
        generator = torch.Generator().manual_seed(self.settings.seed * 7_919 + update * 101 + index)
        losses = []
        for _ in range(self.settings.probe_steps):
            rows = torch.randint(len(self.members), (min(self.batch_size, len(self.members)),), generator=generator)
            loss = self._train_step(*self._batch(rows))
            losses.append(float("nan") if loss is None else loss)
        return float(sum(losses) / len(losses)) if losses else float("nan")

    def _evaluate(self, label: str) -> list[Any]:
        self.session.set_model(self.model, label=label)
        reports = self.session.run(select=lambda item: item.cost == "cheap")
        self.model.train()
        return reports

    def _update_topology(self) -> None:
        update = self.engine.num_updates + 1
        started = time.perf_counter()
        base = self.engine.snapshot()
        remedy_states = {name: copy.deepcopy(remedy.state_dict()) for name, remedy in self.remedies.items()}
        prune_fraction = self.engine.prune_fraction()
        masks = self.engine.propose(candidate_specs(self.settings, prune_fraction, update))
        candidates: list[Candidate] = []
        for index, mask in enumerate(masks):
            self.engine.restore(base)
            self.engine.apply(mask)
            t0 = time.perf_counter()
            probe_loss = self._probe(update, index)
            t1 = time.perf_counter()
            reports = self._evaluate(f"update {update}: {mask.name}")
            t2 = time.perf_counter()
            self.timers.probe += t1 - t0
            self.timers.tests += t2 - t1
            candidate = Candidate(mask.name, mask, reports, probe_loss=probe_loss, seconds=t2 - t0)
            score_candidate(candidate, self.settings.lambda_)
            candidates.append(candidate)
            self.on_event("candidate", {"update": update, "candidate": candidate})
        winner = self.session.pm.hook.safecompress_select_candidate(candidates=candidates, config=self.session.config)
        if winner is None:
            raise SafeCompressError("no candidate was selected (a safecompress_select_candidate hook returned None)")
        self.engine.restore(base)
        for name, remedy_state in remedy_states.items():  # probes trained adversaries too: undo that
            self.remedies[name].load_state_dict(remedy_state)
        self.engine.apply(winner.mask)
        remedy_decisions = self._steer(winner)
        lr_factor = self._apply_lr_scale()
        decision = {
            "kind": "update",
            "update": update,
            "step": self.state.step,
            "epoch": self.state.epoch,
            "prune_fraction": prune_fraction,
            "lambda": self.settings.lambda_,
            "candidates": [c.to_dict() for c in candidates],
            "winner": winner.name,
            "why": _explain(winner, candidates),
            "remedies": remedy_decisions,
            "remedy_weights": self.controller.weights(),
            "lr_factor": lr_factor,
            "density": self.engine.density(),
            "exploration": self.engine.exploration_rate(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        self._log_decision(decision)
        self.on_event("update", decision)
        self._save_checkpoint()

    def _final_check(self) -> None:
        """Test the model on its final topology, steer as at an update (the performance guard can back a
        remedy off here too), and keep this checkpoint if the selection hook prefers it to the best so far."""
        started = time.perf_counter()
        reports = self._evaluate(f"final phase: step {self.state.step}")
        tested = time.perf_counter() - started
        self.timers.tests += tested
        check = Candidate(f"step {self.state.step}", None, reports, seconds=tested)
        score_candidate(check, self.settings.lambda_)
        contenders = [check] if self.best is None else [check, self.best]  # ties: the later checkpoint
        kept = self.session.pm.hook.safecompress_select_candidate(candidates=contenders, config=self.session.config)
        if kept is None:
            raise SafeCompressError("no final checkpoint was selected (a safecompress_select_candidate hook returned None)")
        if kept is check:
            self.best, self.best_step = check, self.state.step
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        remedy_decisions = self._steer(check)
        lr_factor = self._apply_lr_scale()
        decision = {
            "kind": "final-check",
            "step": self.state.step,
            "epoch": self.state.epoch,
            "candidates": [check.to_dict()],
            "kept": self.best.name,  # type: ignore[union-attr]
            "why": _explain_check(kept is check, len(contenders)),
            "remedies": remedy_decisions,
            "remedy_weights": self.controller.weights(),
            "lr_factor": lr_factor,
            "seconds": round(time.perf_counter() - started, 3),
        }
        self._log_decision(decision)
        self.on_event("final-check", decision)
        self._save_checkpoint()

    def _steer(self, winner: Candidate) -> dict[str, Any]:
        if not self.settings.remedies:
            return {}
        bases: dict[str, tuple[float, float]] = {}
        for report in winner.reports:
            if report.remedy is None:
                continue
            if report.remedy not in self.remedy_factories:
                raise UsageError(f"{report.nodeid} declares remedy {report.remedy!r}, which no plugin provides; known: {', '.join(sorted(self.remedy_factories))}")
            self.remedy_options.setdefault(report.remedy, dict(report.remedy_options))
            remedy = self._remedy(report.remedy)
            bases[report.remedy] = (remedy.base_weight, remedy.max_weight)
        return self.controller.observe(winner.reports, bases)

    def _remedy(self, name: str) -> Any:
        if name not in self.remedies:
            context = RemedyContext(
                num_classes=self.data.num_classes,
                device=self.device,
                reference=self.data.population,
                seed=self.settings.seed,
                options=self.remedy_options.get(name, {}),
            )
            self.remedies[name] = self.remedy_factories[name](context)
        return self.remedies[name]

    # --- main loop -------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        self._augment_rng = torch.Generator(device=self.device).manual_seed(self.settings.seed + 1)
        if self.settings.resume:
            self._load_checkpoint()
            self.events.append(f"resumed from {self.checkpoint_path} at step {self.state.step} (update {self.engine.num_updates})")
        else:
            self.decisions_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.decisions_path, "")
            self._save_checkpoint()
        while self.state.epoch < self.epochs:
            if self.state.order is None:
                self.state.order = torch.randperm(len(self.members), generator=self.shuffle)
            while self.state.position < len(self.members):
                rows = self.state.order[self.state.position : self.state.position + self.batch_size]
                self.state.position += self.batch_size
                if rows.numel() == 1 and len(self.members) > 1:
                    continue
                t0 = time.perf_counter()
                loss = self._train_step(*self._batch(rows))
                self.timers.train += time.perf_counter() - t0
                if loss is None:
                    self._roll_back()
                    continue
                self.state.step += 1
                if self.state.step % 20 == 0:
                    self.on_event("step", {"step": self.state.step, "total": self.total_steps, "epoch": self.state.epoch, "loss": loss})
                if self.engine.is_update_step():
                    self._update_topology()
                if self.state.step in self.final_check_steps:
                    self._final_check()
            self.state.epoch += 1
            self.state.position = 0
            self.state.order = None
            self.on_event("epoch", {"epoch": self.state.epoch, "epochs": self.epochs})
        if self.best_weights is not None and self.best_step != self.state.step:
            self.model.load_state_dict(self.best_weights)
            message = f"shipped the final-phase checkpoint of step {self.best_step} (of {self.state.step}): the selection rule preferred it to later ones"
            self.events.append(message)
            log.info(message)
        self.model.eval()
        return LoopResult(self.model, self.engine, self.decisions, self.timers, self.controller.weights(), self.events, self.final_checks, self.best_step)

    def _roll_back(self) -> None:
        """NaN/inf loss: back to the last checkpoint with half the learning rate, and say so."""
        if self._memory_checkpoint is None or self.state.rollbacks >= MAX_ROLLBACKS:
            raise DivergedError(f"the loss became NaN/inf at step {self.state.step} and {MAX_ROLLBACKS} rollbacks did not help; lower the learning rate")
        rollbacks = self.state.rollbacks + 1
        at_step = self.state.step
        self._restore(self._memory_checkpoint)
        self.state.rollbacks = rollbacks
        self.state.lr_scale /= 2.0
        self._apply_lr_scale()
        message = f"loss was NaN/inf at step {at_step}: rolled back to step {self.state.step} and halved the learning rate (scale {self.state.lr_scale:g})"
        self.events.append(message)
        log.warning(message)
        self.on_event("rollback", {"message": message})

    def remedy_lr_factor(self) -> float:
        """The product of the active remedies' learning-rate factors (``lr_scale(weight)``, optional in
        the Remedy protocol): a min-max remedy slows the classifier while it is on."""
        factor = 1.0
        for name, weight in self.controller.weights().items():
            remedy = self.remedies.get(name)
            if weight > 0 and remedy is not None and hasattr(remedy, "lr_scale"):
                factor *= float(remedy.lr_scale(weight))
        return factor

    def _apply_lr_scale(self) -> float:
        """Set every group's learning rate to base × rollback scale × remedy factor; returns that factor."""
        scale = self.state.lr_scale * self.remedy_lr_factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale
        return scale

    # --- decisions and checkpoints ---------------------------------------------------------------
    def _log_decision(self, decision: dict[str, Any]) -> None:
        (self.final_checks if decision["kind"] == "final-check" else self.decisions).append(decision)
        self.state.decisions = len(self.decisions) + len(self.final_checks)
        append_line(self.decisions_path, json.dumps(json_safe(decision)))

    def _checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "settings": json.dumps(self.settings.run_defining(), sort_keys=True),
            "identity": json.dumps(self.identity, sort_keys=True),
            "state": {
                "step": self.state.step,
                "epoch": self.state.epoch,
                "position": self.state.position,
                "order": self.state.order,
                "lr_scale": self.state.lr_scale,
                "rollbacks": self.state.rollbacks,
                "decisions": self.state.decisions,
            },
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "engine": copy.deepcopy(self.engine.state_dict()),
            "shuffle": self.shuffle.get_state(),
            "augment": self._augment_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "controller": self.controller.state_dict(),
            "remedy_options": json.dumps(self.remedy_options, sort_keys=True),
            "remedies": {name: remedy.state_dict() for name, remedy in self.remedies.items()},
            "timers": self.timers.to_dict(),
            "best": None if self.best is None else {
                "step": self.best_step,
                "name": self.best.name,
                "reports": json.dumps([r.to_dict() for r in self.best.reports]),
                "weights": self.best_weights,
            },
        }

    def _save_checkpoint(self) -> None:
        checkpoint = self._checkpoint()
        self._memory_checkpoint = checkpoint
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(checkpoint, tmp)

    def _load_checkpoint(self) -> None:
        if not self.checkpoint_path.is_file():
            raise UsageError(f"--resume: there is no checkpoint at {self.checkpoint_path} to resume from; run without --resume to start")
        try:
            checkpoint = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is a usage problem
            raise UsageError(f"cannot resume: {self.checkpoint_path} is unreadable ({type(exc).__name__}); delete it to start over") from None
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise UsageError(f"cannot resume: {self.checkpoint_path} is not a safecompress checkpoint")
        saved = json.loads(checkpoint["settings"])
        current = self.settings.run_defining()
        differing = sorted(k for k in set(saved) | set(current) if k not in ("resume", "overwrite") and saved.get(k) != current.get(k))
        if differing:
            raise UsageError(f"cannot resume: settings differ from the checkpoint's ({', '.join(differing)}); use the same options or a new --out")
        changed = differences(json.loads(checkpoint.get("identity", "{}")), self.identity)
        if changed:
            raise UsageError(f"cannot resume: this is not the run in the checkpoint, which differs in {'; '.join(changed)}; use the same inputs or a new --out")
        self._restore(checkpoint)
        lines = self.decisions_path.read_text(encoding="utf-8").splitlines() if self.decisions_path.exists() else []
        if len(lines) < self.state.decisions:
            raise UsageError(f"cannot resume: {self.decisions_path} has {len(lines)} decisions, the checkpoint expects {self.state.decisions}")
        kept = lines[: self.state.decisions]
        atomic_write_text(self.decisions_path, "".join(line + "\n" for line in kept))
        logged = [json.loads(line) for line in kept]
        self.decisions = [d for d in logged if d.get("kind", "update") == "update"]
        self.final_checks = [d for d in logged if d.get("kind") == "final-check"]
        timers = checkpoint.get("timers", {})
        self.timers = Timers(timers.get("train_s", 0.0), timers.get("probe_s", 0.0), timers.get("tests_s", 0.0))
        self._memory_checkpoint = checkpoint

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state"]
        self.state = TrainState(
            step=int(state["step"]),
            epoch=int(state["epoch"]),
            position=int(state["position"]),
            order=None if state["order"] is None else state["order"].cpu().clone(),
            lr_scale=float(state["lr_scale"]),
            rollbacks=int(state["rollbacks"]),
            decisions=int(state["decisions"]),
        )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(copy.deepcopy(checkpoint["optimizer"]))
        self.engine.load_state_dict(checkpoint["engine"])
        self.shuffle.set_state(checkpoint["shuffle"].cpu())
        self._augment_rng.set_state(checkpoint["augment"].cpu() if self.device.type == "cpu" else checkpoint["augment"])
        torch.set_rng_state(checkpoint["torch_rng"].cpu())
        if checkpoint["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in checkpoint["cuda_rng"]])
        self.controller.load_state_dict(checkpoint["controller"])
        self.remedy_options = json.loads(checkpoint["remedy_options"])
        self.remedies = {}
        for name, remedy_state in checkpoint["remedies"].items():
            self._remedy(name).load_state_dict(remedy_state)
        best = checkpoint.get("best")
        self.best, self.best_step, self.best_weights = None, None, None
        if best is not None:
            self.best = Candidate(best["name"], None, [TestReport.from_dict(r) for r in json.loads(best["reports"])])
            score_candidate(self.best, self.settings.lambda_)
            self.best_step = int(best["step"])
            self.best_weights = {k: v.detach().clone() for k, v in best["weights"].items()}
        self._apply_lr_scale()


def final_check_steps(schedule: PruneSchedule, count: int) -> frozenset[int]:
    """``count`` steps spread evenly over the final phase (after the last topology update, or over all
    of training when there is none), the last of them the final step."""
    updates = schedule.update_steps()
    start = updates[-1] if updates else 0
    span = schedule.total_steps - start
    if count <= 0 or span <= 0:
        return frozenset()
    return frozenset(start + math.ceil(span * k / count) for k in range(1, count + 1))


def _explain_check(kept_new: bool, contenders: int) -> str:
    if not kept_new:
        return "an earlier checkpoint stays best"
    return "better than the best earlier checkpoint" if contenders > 1 else "first final check"


def _explain(winner: Candidate, candidates: list[Candidate]) -> str:
    fewest = min(c.failures for c in candidates)
    tied = [c for c in candidates if c.failures == fewest]
    if len(tied) == 1:
        return f"only candidate with severity-weighted failures {fewest:g}"
    return f"best score among {len(tied)} candidates with failures {fewest:g}: accuracy {winner.accuracy:.4f} − λ·risk {winner.risk:+.4f} = {winner.score:.4f}"


def read_decisions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
