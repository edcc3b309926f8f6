"""The compression loop: dynamic sparse training whose topology updates are decided by safety tests.

Before the first step the dense parent's baseline is a decision: a remedy whose test is red there is
on from step 0. At every scheduled update (METHOD.md §3) the cheap tests first judge the model as
its last retraining segment left it (a shipping candidate, and what steering reads), then: propose
N candidate masks from the current weights (refactor), fine-tune each for a few probe steps from a
snapshot and run the cheap safety tests on it (test), let the ``safecompress_select_candidate`` hook
pick the survivor (select), restore the snapshot, apply the survivor and train on (retrain). After
the last update the topology is final, and the cheap tests keep judging ``final_checks`` evenly
spaced checkpoints. The model that ships is the best *passing* judged point of the run (or of every
attempt, :mod:`.shipping`), the best red one only when none passed. Every decision is logged to
``decisions.jsonl`` (``kind``: baseline, update, final-check) and checkpointed, so ``--resume`` after
a kill finishes bit-identically on the CPU.

The concerns live apart: the member stream (:mod:`.stream`), candidate strategies and explanations
(:mod:`.updates`), remedies (:class:`.steering.Steering`) and checkpoints (:mod:`.checkpoint`).
Tests are run through an ``evaluate(model, label)`` callable, by default the session's cheap tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from safecompress.attacks.robustness import InputBox
from safecompress.data.splits import DataSplits
from safecompress.distributed import GradientSync, Ranks, RanksDiverged, state_digest
from safecompress.driver.checkpoint import capture_loop, restore_loop, resume_loop, save_checkpoint
from safecompress.driver.selection import Candidate, hook_selector, score_candidate
from safecompress.driver.settings import CompressSettings
from safecompress.driver.shipping import JudgedPoint, ShippingRecord, load_point
from safecompress.driver.steering import Steering, SteeringPlan
from safecompress.driver.stream import TrainState, batch_of, steps_per_epoch
from safecompress.driver.updates import candidate_specs, explain, final_check_steps, growth_registry, sparse_engine
from safecompress.errors import SafeCompressError
from safecompress.fsutil import append_line, atomic_write_text, json_safe
from safecompress.inference import model_logits
from safecompress.remedies import RemedyContext
from safecompress.runner.reports import TestReport
from safecompress.runner.session import SafetySession
from safecompress.sparse import PruneSchedule, SparseEngine
from safecompress.training import TrainRecipe

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3
MIN_SEGMENT_STEPS = 10  # a retraining segment shorter than this cannot show what a mask is worth


def training_steps(settings: CompressSettings, recipe: TrainRecipe, members: int) -> int:
    """Optimizer steps of one attempt: the run's epochs (else the recipe's) over ``members`` rows."""
    return (settings.epochs or recipe.epochs) * steps_per_epoch(members, recipe.batch_size)


def fitting_updates(requested: int, total_steps: int) -> int:
    """``requested`` updates, or as many as leave ``MIN_SEGMENT_STEPS`` steps between them (a short
    run with the default 20 updates would change the mask every other step and spend its time probing)."""
    return min(requested, total_steps // MIN_SEGMENT_STEPS)


Evaluate = Callable[[nn.Module, str], list[TestReport]]


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
class LoopResult:
    model: nn.Module
    engine: SparseEngine
    decisions: list[dict[str, Any]]
    timers: Timers
    remedy_weights: dict[str, float]
    events: list[str] = field(default_factory=list)
    final_checks: list[dict[str, Any]] = field(default_factory=list)
    shipping: Optional[ShippingRecord] = None
    shipped: Optional[JudgedPoint] = None  # the judged point that ships; None: the last step's weights
    learned: SteeringPlan = field(default_factory=SteeringPlan)  # what a next attempt starts with
    baseline: Optional[dict[str, Any]] = None  # the baseline decision

    @property
    def shipped_step(self) -> Optional[int]:
        return None if self.shipped is None else self.shipped.step


def training_autocast(precision: str, device: torch.device) -> Callable[[], Any]:
    """The context training steps run in: bf16 autocast (``precision`` "bf16", or "auto" on a CUDA
    device with bf16), else none. Weights, optimizer state and masks stay fp32, so pruned weights
    stay exactly zero; safety tests always judge the model in fp32."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def cheap_tests(session: SafetySession, only: Optional[Callable[[Any], bool]] = None) -> Evaluate:
    """The default ``evaluate``: the session's cheap tests (those ``only`` keeps) on ``model``, which
    then trains on."""
    return tests_of_cost(session, "cheap", only)


def tests_of_cost(session: SafetySession, cost: str, only: Optional[Callable[[Any], bool]] = None) -> Evaluate:
    """An ``evaluate`` running the session's tests of ``cost`` (those ``only`` keeps) on ``model``,
    which then trains on."""

    def evaluate(model: nn.Module, label: str) -> list[TestReport]:
        session.set_model(model, label=label)
        reports = session.run(select=lambda item: item.cost == cost and (only is None or only(item)))
        model.train()
        return reports

    return evaluate


class CompressionLoop:
    """One run of test-driven dynamic sparse training on ``model`` (a copy of the dense parent).

    ``evaluate`` judges a model (default: the session's cheap tests; the benchmark's untested arms
    pass one that returns no reports); ``on_event(kind, payload)`` observes steps, updates and checks;
    ``fixed_remedies`` (name → weight) switches remedies on for the whole run, unsteered, with
    ``fixed_options`` (name → the remedy's options, as a test's remedy mark would give them);
    ``excluded_remedies`` are never switched on (what ``--budget`` cannot afford).
    """

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
        evaluate: Optional[Evaluate] = None,
        baseline: Optional[list[TestReport]] = None,
        attempt: int = 1,
        plan: Optional[SteeringPlan] = None,
        shipping: Optional[ShippingRecord] = None,
        earlier_attempts: Optional[list[dict[str, Any]]] = None,
        resume: Optional[bool] = None,
        fixed_remedies: Optional[dict[str, float]] = None,
        fixed_options: Optional[dict[str, dict[str, Any]]] = None,
        ranks: Optional[Ranks] = None,
        excluded_remedies: frozenset[str] = frozenset(),
    ) -> None:
        self.session = session
        self.ranks = ranks or Ranks()  # torchrun's processes: data-parallel training, candidates split across them
        self.sync = GradientSync(self.ranks)
        self.baseline_reports = list(baseline or [])  # the cheap tests on the dense parent, before training
        self.attempt = attempt
        self.resume = settings.resume if resume is None else resume  # continue from the checkpoint in ``out``
        self.earlier_attempts = list(earlier_attempts or [])  # summaries, kept in the checkpoint for --resume
        self.identity = dict(identity or {})  # parent, thresholds, tests, data: a resume must match it
        self.members = data.members
        self.recipe = recipe
        self.settings = settings
        self.device = session.device
        self.on_event = (on_event if self.ranks.is_main else None) or (lambda kind, payload: None)  # rank 0 reports progress
        self.evaluate = evaluate or cheap_tests(session)
        self.checkpoint_path = settings.out / "checkpoint.pt"
        self.decisions_path = settings.out / "decisions.jsonl"
        self.epochs = settings.epochs or recipe.epochs
        self.batch_size = recipe.batch_size
        self.total_steps = training_steps(settings, recipe, len(self.members))
        torch.manual_seed(settings.seed)
        self.model = copy.deepcopy(parent).to(self.device).train()
        self.channels_last = self.device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        if self.channels_last:  # the layout cuDNN's convolutions are fastest in; masks multiply element-wise in any layout
            self.model.to(memory_format=torch.channels_last)
        self.trainer = self.model  # what the main stream's forward runs through: DDP under torchrun
        if self.ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.trainer = DistributedDataParallel(self.model, find_unused_parameters=self._has_unused_parameters())
        self.autocast = training_autocast(settings.precision, self.device)
        if settings.compile:
            self.trainer = torch.compile(self.trainer)
        self.optimizer = recipe.make_optimizer(self.model.parameters())
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.updates = fitting_updates(settings.updates, self.total_steps)
        self.schedule = PruneSchedule(self.total_steps, num_updates=self.updates, stop_fraction=settings.stop_fraction)
        self.engine = sparse_engine(self.model, self.optimizer, settings, self.schedule, growth_registry(session.pm))
        self.shuffle = torch.Generator().manual_seed(settings.seed)
        self.steering = Steering(
            remedy_factories,
            lambda options: RemedyContext(
                num_classes=data.num_classes, device=self.device, reference=data.population, seed=settings.seed, options=options, average_gradients=self.sync.average, input_box=InputBox.for_data(data)
            ),
            enabled=settings.remedies,
            stall_gain=settings.stall_gain,
            plan=plan,
            excluded=excluded_remedies,
        )
        if fixed_remedies:  # always on at these weights, steered by nothing (the benchmark's defence baselines)
            self.steering.fix(fixed_remedies, fixed_options)
        self._select = hook_selector(session.pm, session.config)
        self.shipping = shipping or ShippingRecord(self._select, self.settings.lambda_)
        self.state = TrainState()
        self.timers = Timers()
        self.decisions: list[dict[str, Any]] = []
        self.final_checks: list[dict[str, Any]] = []
        self.final_check_steps = final_check_steps(self.schedule, settings.final_checks)
        self.decision_steps = sorted(set(self.schedule.update_steps()) | self.final_check_steps)
        self.baseline_decision: Optional[dict[str, Any]] = None
        self.log_offset = 0  # decisions of earlier attempts already in decisions.jsonl
        self.events: list[str] = []
        if self.updates < settings.updates:
            self.events.append(f"{settings.updates} topology updates do not fit in {self.total_steps} training steps: {self.updates} updates, at least {MIN_SEGMENT_STEPS} steps apart")
        self._memory_checkpoint: Optional[dict[str, Any]] = None

    def _has_unused_parameters(self) -> bool:
        """Whether a training step leaves some parameter without a gradient (an unused pooler, a
        frozen branch): DDP must then look for them every step, which costs a graph traversal, so
        it is asked for only when one forward and backward on a member batch finds one."""
        probe = copy.deepcopy(self.model)  # batch-norm statistics of the real model stay untouched
        rows = torch.arange(min(self.batch_size, len(self.members)))
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            x, y = batch_of(self.members, rows, self.device)
            F.cross_entropy(model_logits(probe, x), y).backward()
        return any(p.requires_grad and p.grad is None for p in probe.parameters())

    # --- training ---------------------------------------------------------------------------------
    def _train_step(self, x: Any, y: torch.Tensor, shared: bool = True) -> Optional[float]:
        """One optimizer step; returns the task loss, or None when the loss was not finite.

        ``shared``: a step of the main stream, which under torchrun every rank takes together on its
        shard (gradients averaged; a non-finite loss on any rank rolls every rank back). Probes are
        local steps on one rank's candidate."""
        if self.recipe.augment is not None:
            x = self.recipe.augment(x, self.augment_rng)
        self.optimizer.zero_grad(set_to_none=True)
        together = shared and self.ranks.distributed
        if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            logits = model_logits(self.trainer if shared else self.model, x)
            task = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
            total = self.steering.add_losses(task, self.model, x, logits, y)
        finite = bool(torch.isfinite(total))
        if together:
            finite = not self.ranks.any(not finite)
        elif not finite:
            return None
        total.backward()  # under DDP every rank runs its backward, or the others would wait for it
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        self.engine.step()
        return float(task.detach())

    def _probe(self, update: int, index: int) -> float:
        """A few steps on member batches drawn by their own generator, so probes never shift the main stream."""
        generator = torch.Generator().manual_seed(self.settings.seed * 7_919 + update * 101 + index)
        losses = []
        with self.sync.paused():  # ranks probe different candidates: nothing is averaged
            for _ in range(self.settings.probe_steps):
                rows = torch.randint(len(self.members), (min(self.batch_size, len(self.members)),), generator=generator)
                loss = self._train_step(*batch_of(self.members, rows, self.device), shared=False)
                losses.append(float("nan") if loss is None else loss)
        return float(sum(losses) / len(losses)) if losses else float("nan")

    # --- decisions --------------------------------------------------------------------------------
    def _judge(self, label: str, kind: str) -> tuple[Candidate, Optional[str]]:
        """Run the cheap tests on the model as training left it; a judged point is a shipping
        candidate (unless nothing judged it: the untested benchmark arms)."""
        started = time.perf_counter()
        self._align_buffers()
        with self._rank_local():  # rank 0 judges; every rank steers from its reports
            reports = self.evaluate(self.model, label) if self.ranks.is_main else None
        reports = self.ranks.from_main(reports)
        tested = time.perf_counter() - started
        self.timers.tests += tested
        judged = Candidate(f"step {self.state.step}", None, reports, seconds=tested)
        score_candidate(judged, self.settings.lambda_)
        if not reports or (self.settings.ship_from == "final-phase" and kind != "final-check"):
            return judged, None
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        masks = {k: v.detach().clone() for k, v in self.engine.masks.items()}
        return judged, self.shipping.consider(JudgedPoint(judged, self.state.step, kind, self.attempt, weights, masks))

    @contextlib.contextmanager
    def _rank_local(self) -> Any:
        """Work only some ranks do (judging, their own candidates) must not move the random state
        the shared stream draws from: forked under torchrun, untouched in a single process."""
        if not self.ranks.distributed:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            yield

    def _next_decision(self) -> Optional[int]:
        return next((s for s in self.decision_steps if s > self.state.step), None)

    def _update_topology(self) -> None:
        update = self.engine.num_updates + 1
        started = time.perf_counter()
        survivor, kept = self._judge(f"update {update}: the model after its retraining segment", "segment")
        base = self.engine.snapshot()
        remedy_states = self.steering.snapshot()
        prune_fraction = self.engine.prune_fraction()
        masks = self.engine.propose(candidate_specs(self.settings, prune_fraction, update))
        outcomes: list[tuple[int, float, list[TestReport], float]] = []  # this rank's candidates
        candidates_started = time.perf_counter()
        with self._rank_local():
            for index, mask in enumerate(masks):
                if not self.ranks.owns(index):
                    continue
                if len(masks) == 1:  # nothing to choose between: probing and judging it would change nothing
                    outcomes.append((index, float("nan"), [], 0.0))
                    continue
                self.engine.restore(base)
                self.engine.apply(mask)
                t0 = time.perf_counter()
                probe_loss = self._probe(update, index)
                t1 = time.perf_counter()
                reports = self.evaluate(self.model, f"update {update}: {mask.name}")
                t2 = time.perf_counter()
                self.timers.probe += t1 - t0
                self.timers.tests += t2 - t1
                outcomes.append((index, probe_loss, reports, t2 - t0))
        tested: dict[int, Candidate] = {}
        tested_on: dict[str, int] = {}
        for rank, found in enumerate(self.ranks.gather(outcomes)):
            for index, probe_loss, reports, seconds in found:
                tested[index] = Candidate(masks[index].name, masks[index], reports, probe_loss=probe_loss, seconds=seconds)
                tested_on[masks[index].name] = rank
        candidates_seconds = time.perf_counter() - candidates_started  # probing and testing all N, wall time (ranks in parallel)
        candidates = [tested[index] for index in sorted(tested)]
        for candidate in candidates:
            score_candidate(candidate, self.settings.lambda_)
            self.on_event("candidate", {"update": update, "candidate": candidate})
        winner = self._select(candidates, "candidate")
        self.engine.restore(base)
        self.steering.restore(remedy_states)  # probes trained adversaries too: undo that
        self.engine.apply(winner.mask)
        self._decide(
            "update",
            started,
            {
                "update": update,
                "updates": self.updates,  # the updates that fit this run (at most --updates)
                "step": self.state.step,
                "epoch": self.state.epoch,
                "prune_fraction": prune_fraction,
                "lambda": self.settings.lambda_,
                "checkpoint": survivor.to_dict(),
                "kept": kept,
                "candidates": [c.to_dict() for c in candidates],
                "winner": winner.name,
                "why": explain(winner, candidates),
            },
            survivor,
            {
                "density": self.engine.density(),
                "exploration": self.engine.exploration_rate(),
                "candidates_seconds": round(candidates_seconds, 3),
                **({"tested_on_rank": tested_on} if self.ranks.distributed else {}),
            },
        )

    def _final_check(self) -> None:
        """Judge the model on its final topology (a shipping candidate) and steer from it, as at an
        update (the performance guard can back a remedy off here too)."""
        started = time.perf_counter()
        check, kept = self._judge(f"final phase: step {self.state.step}", "final-check")
        self._decide("final-check", started, {"step": self.state.step, "epoch": self.state.epoch, "candidates": [check.to_dict()], "kept": kept}, check, {})

    def _baseline(self) -> None:
        """The dense parent's cheap tests as decision 0: a remedy red there is on from step 0."""
        remedies = self.steering.steer(self.baseline_reports, 0, self._next_decision(), baseline=True)
        lr_factor = self.apply_lr_scale()
        decision = {
            "kind": "baseline",
            "attempt": self.attempt,
            "step": 0,
            "outcomes": {r.nodeid: r.outcome for r in self.baseline_reports},
            "margins": {r.nodeid: r.margin for r in self.baseline_reports},
            "remedies": remedies,
            "remedy_weights": self.steering.weights(),
            "lr_factor": lr_factor,
            "plan": self.steering.controller.plan.to_dict(),
        }
        self._log(decision)

    def _decide(self, kind: str, started: float, decision: dict[str, Any], judged: Candidate, tail: dict[str, Any]) -> None:
        """Steer from the judged model, then log, announce and checkpoint the decision."""
        remedies = self.steering.steer(judged.reports, self.state.step, self._next_decision())
        lr_factor = self.apply_lr_scale()
        decision = {"kind": kind, "attempt": self.attempt, **decision, "remedies": remedies, "remedy_weights": self.steering.weights(), "lr_factor": lr_factor, **tail}
        decision["seconds"] = round(time.perf_counter() - started, 3)
        (self.final_checks if kind == "final-check" else self.decisions).append(decision)
        self._log(decision)

    def _log(self, decision: dict[str, Any]) -> None:
        if decision["kind"] == "baseline":
            self.baseline_decision = decision
        if self.ranks.distributed:
            self._align_buffers()
            decision["ranks"] = self._agreed_state()
        self.state.decisions = self.log_offset + (self.baseline_decision is not None) + len(self.decisions) + len(self.final_checks)
        if self.ranks.is_main:
            append_line(self.decisions_path, json.dumps(json_safe(decision)))
            self.on_event(decision["kind"], decision)
        self._save_checkpoint()

    def _align_buffers(self) -> None:
        """Batch-norm statistics are each rank's own between forward passes (DDP broadcasts rank 0's
        at the next one): at a decision every rank takes rank 0's, so all judge and save one model."""
        if self.ranks.distributed:
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def _agreed_state(self) -> dict[str, Any]:
        """Every rank's digest of weights, masks and remedy states at this decision; they must be one."""
        digests = self.ranks.gather(state_digest(self.model, self.engine.masks, self.steering.state_dict()))
        if len(set(digests)) > 1:
            raise RanksDiverged(f"ranks hold different weights or masks at step {self.state.step}: {', '.join(d[:12] for d in digests)}")
        return {"world_size": self.ranks.world_size, "state_sha256": digests[0]}

    def apply_lr_scale(self) -> float:
        """Set every group's learning rate to base × rollback scale × remedy factor; returns that factor."""
        scale = self.state.lr_scale * self.steering.lr_factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale
        return scale

    # --- main loop --------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        self.augment_rng = torch.Generator(device=self.device).manual_seed(self.settings.seed + 1)
        if self.resume:
            self._resume()
        else:
            if self.ranks.is_main:
                self.decisions_path.parent.mkdir(parents=True, exist_ok=True)
                if self.attempt == 1:
                    atomic_write_text(self.decisions_path, "")
            self.log_offset = self.ranks.from_main(len(self.decisions_path.read_text(encoding="utf-8").splitlines()) if self.decisions_path.exists() else 0)
            self.state.decisions = self.log_offset
            self._save_checkpoint()
            self._baseline()
        while self.state.epoch < self.epochs:
            while self.state.position < len(self.members):
                if self.state.order is None:  # a new epoch, or a rollback to a checkpoint taken before its first batch
                    self.state.order = torch.randperm(len(self.members), generator=self.shuffle)
                rows = self.state.order[self.state.position : self.state.position + self.batch_size]
                self.state.position += self.batch_size
                if rows.numel() < 2 * self.ranks.world_size and len(self.members) > 1:
                    continue  # a one-row batch (or shard): batch norm cannot train on it
                t0 = time.perf_counter()
                loss = self._train_step(*batch_of(self.members, self.ranks.shard(rows), self.device))
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
        shipped = self.shipping.shipped
        if shipped is not None:
            load_point(self.model, self.engine, shipped)
            colour = "a passing" if shipped.passed else "a RED (no judged checkpoint passed)"
            message = f"shipped {colour} checkpoint: {shipped.label}, of {self.state.step} steps in attempt {self.attempt}"
            self.events.append(message)
            log.info(message)
        self.model.eval()
        return LoopResult(
            self.model,
            self.engine,
            self.decisions,
            self.timers,
            self.steering.weights(),
            self.events,
            self.final_checks,
            self.shipping,
            shipped,
            self.steering.learned_plan(),
            self.baseline_decision,
        )

    def _roll_back(self) -> None:
        """NaN/inf loss: back to the last checkpoint with half the learning rate, and say so."""
        if self._memory_checkpoint is None or self.state.rollbacks >= MAX_ROLLBACKS:
            raise DivergedError(f"the loss became NaN/inf at step {self.state.step} and {MAX_ROLLBACKS} rollbacks did not help; lower the learning rate")
        rollbacks = self.state.rollbacks + 1
        at_step = self.state.step
        self._restore(self._memory_checkpoint)
        self.state.rollbacks = rollbacks
        self.state.lr_scale /= 2.0
        self.apply_lr_scale()
        message = f"loss was NaN/inf at step {at_step}: rolled back to step {self.state.step} and halved the learning rate (scale {self.state.lr_scale:g})"
        self.events.append(message)
        log.warning(message)
        self.on_event("rollback", {"message": message})

    # --- checkpoints (driver/checkpoint.py) -------------------------------------------------------
    def _save_checkpoint(self) -> None:
        self._memory_checkpoint = capture_loop(self)
        if self.ranks.is_main:  # ranks hold the same state: rank 0 writes it
            save_checkpoint(self.checkpoint_path, self._memory_checkpoint)
        if self.ranks.distributed:
            torch.distributed.barrier()  # a kill after this decision finds its checkpoint on disk

    def _resume(self) -> None:
        self._memory_checkpoint = resume_loop(self)
        self.events.append(f"resumed from {self.checkpoint_path} at step {self.state.step} (update {self.engine.num_updates})")

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        restore_loop(self, checkpoint)
