"""The dynamic sparse training engine: masks, their upkeep at every step, and topology updates.

Upkeep per optimizer step is one fused in-place multiply:

1. an optimizer *step pre-hook* multiplies the maskable gradients by the masks, so the optimizer only
   ever sees zero gradient at pruned positions. SGD (with or without Nesterov, weight decay), Adam,
   AdamW and AMSGrad then keep zero momentum / moments there and move a zero weight by exactly zero:
   neither weights nor optimizer state need per-step masking (tests prove it per optimizer);
2. for any other optimizer (it might move or couple positions), :meth:`SparseEngine.step`, called
   right after ``optimizer.step()``, also multiplies the weights by the masks.

Optimizer state is masked explicitly only when the topology changes. Masks live outside the forward
pass (no parametrizations), so ``torch.compile`` of the model never recompiles when they change.

Dense gradients for RigL growth are captured by the pre-hook at update steps only (before masking);
``momentum`` growth keeps an EMA of dense gradients over the few steps before each scheduled update.
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from safecompress.rngstate import capture_rng, restore_rng
from safecompress.sparse.allocation import Distribution, Init, initial_masks
from safecompress.sparse.layers import LayerInfo, find_maskable, unwrap_model
from safecompress.sparse.schedule import PruneSchedule
from safecompress.sparse.topology import (
    BUILTIN_GROWTH,
    CandidateMask,
    Growth,
    GrowthInputs,
    GrowthRule,
    GrowthSpec,
    grow_largest,
    prune_smallest,
    replace_count,
)

log = logging.getLogger(__name__)

STATE_FORMAT = 1
_topology_ids = itertools.count(1)
# Optimizers that, given zero gradient, zero state and zero weight, leave all three exactly zero.
ZERO_PRESERVING_OPTIMIZERS: tuple[type, ...] = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


@dataclass
class Snapshot:
    """Weights, buffers, optimizer state, RNG and engine state at one moment, for probe fine-tunes.

    Tensors are copies (on ``device`` when given), except the engine's masks and captured gradients,
    which the engine never mutates in place and are therefore shared.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    rng: dict[str, Any]
    engine: dict[str, Any] = field(repr=False)


class SparseEngine:
    """Keeps a model sparse during training and changes its topology on a schedule.

    Create it after moving the model to its device and dtype and after creating the optimizer, like
    an LR scheduler; call :meth:`step` right after every ``optimizer.step()``. With ``auto_update``
    (the default) :meth:`step` performs the scheduled topology updates itself with ``growth``; a driver
    that selects among candidates passes ``auto_update=False`` and uses :meth:`is_update_step`,
    :meth:`propose`, :meth:`snapshot`, :meth:`apply` and :meth:`restore`.

    ``extra_growth`` names growth rules the driver will propose besides ``growth``, so the engine
    captures what they need (``gradient``: the dense gradient at update steps; ``momentum``: an EMA
    of dense gradients over the ``momentum_window`` steps before each update, β = ``momentum_beta``).

    ``mask_weights_every_step`` (default: only for optimizers outside
    :data:`ZERO_PRESERVING_OPTIMIZERS`) adds the post-step weight multiply.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        density: float | None,
        *,
        distribution: Distribution = "erk",
        init: Init | None = None,
        growth: Growth = "random",
        schedule: PruneSchedule | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        embeddings: bool = False,
        masks: Mapping[str, torch.Tensor] | None = None,
        seed: int = 0,
        auto_update: bool = True,
        extra_growth: Sequence[Growth] = (),
        growth_rules: Mapping[str, GrowthRule] | None = None,
        momentum_window: int = 16,
        momentum_beta: float = 0.9,
        mask_weights_every_step: bool | None = None,
    ) -> None:
        self._rules: dict[str, GrowthRule] = {**BUILTIN_GROWTH, **dict(growth_rules or {})}
        for rule in (growth, *extra_growth):
            if rule not in self._rules:
                raise ValueError(f"unknown growth {rule!r}; expected one of {', '.join(self._rules)}")
        self.model = unwrap_model(model)
        self.optimizer = optimizer
        self.schedule = schedule
        self.growth: Growth = growth
        self.auto_update = auto_update
        needs = {self._rules[rule].needs for rule in (growth, *extra_growth)}
        self._capture_gradient = "gradient" in needs
        self._momentum_window = momentum_window if "momentum" in needs else 0
        self._momentum_beta = momentum_beta

        layers = find_maskable(self.model, include, exclude, embeddings)
        if not layers:
            raise ValueError("no maskable parameters found (check include/exclude patterns)")
        self.layers = layers
        self.names = [m.name for m in layers]
        self.params = [m.param for m in layers]
        self._generator = torch.Generator().manual_seed(seed)
        if masks is None:
            if density is None:
                raise ValueError("give a density or explicit masks")
            built = initial_masks(layers, density, distribution, init, self._generator)
        else:
            built = [self._checked_mask(name, masks) for name in self.names]
        self._masks: list[torch.Tensor] = [m.to(p.device, torch.bool) for m, p in zip(built, self.params)]
        self._mul = [m.to(p.dtype) for m, p in zip(self._masks, self.params)]
        self._ever = [m.clone() for m in self._masks]
        self._nnz = [int(m.sum()) for m in self._masks]
        self._step = 0
        self._num_updates = 0
        self._topology_id = next(_topology_ids)
        self._grads_masked = False
        self._dense_grad: list[torch.Tensor | None] | None = None
        self._dense_grad_step = -1
        self._momentum: list[torch.Tensor] | None = None
        self._momentum_step = -1
        self._hook = optimizer.register_step_pre_hook(self._pre_step) if optimizer is not None else None
        if mask_weights_every_step is None:
            mask_weights_every_step = type(optimizer) not in ZERO_PRESERVING_OPTIMIZERS
        self._mask_weights = mask_weights_every_step
        with torch.no_grad():
            for i, mask in enumerate(self._masks):
                self._zero_outside(i, ~mask)
        log.info("sparse engine: %d maskable tensors, density %.4f", len(self.params), self.density())

    # --- per-step upkeep -----------------------------------------------------------------------
    def mask_gradients(self) -> None:
        """Zero the gradients of pruned positions (idempotent until the next :meth:`step`).

        The optimizer pre-hook calls it; call it yourself before gradient clipping so the norm
        ignores pruned positions. At update steps it first keeps the dense gradient for growth.
        """
        if self._grads_masked:
            return
        upcoming = self._step + 1
        if self.schedule is not None and (self._capture_gradient or self._momentum_window):
            self._observe_dense_gradients(upcoming)
        pairs = [(p.grad, m) for p, m in zip(self.params, self._mul) if p.grad is not None and not p.grad.is_sparse]
        if pairs:
            grads, masks = zip(*pairs)
            torch._foreach_mul_(list(grads), list(masks))
        self._grads_masked = True

    def apply_masks(self) -> None:
        """Multiply every maskable weight by its mask: one fused in-place op."""
        with torch.no_grad():
            torch._foreach_mul_(self.params, self._mul)

    def step(self) -> bool:
        """Call after ``optimizer.step()``: advances the schedule, updates the topology when due.

        Also re-applies the masks to the weights unless the optimizer provably keeps them zero.
        Returns whether a topology update was made.
        """
        self._step += 1
        self._grads_masked = False
        if self._mask_weights:
            self.apply_masks()
        if self.auto_update and self.is_update_step():
            self.update()
            return True
        return False

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.mask_gradients()

    def _observe_dense_gradients(self, step: int) -> None:
        assert self.schedule is not None
        grads = [p.grad for p in self.params]
        if self._capture_gradient and self.schedule.is_update_step(step):
            self._dense_grad = [None if g is None else g.detach().clone() for g in grads]
            self._dense_grad_step = step
        target = self.schedule.next_update_step(step)
        if not self._momentum_window or target is None or target - step >= self._momentum_window:
            return
        dense = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(self.params, grads)]
        if self._momentum is None or self._momentum_step != step - 1 or self.schedule.is_update_step(step - 1):
            self._momentum = [g.clone() for g in dense]  # new tensors: snapshots keep the old ones
        else:
            torch._foreach_mul_(self._momentum, self._momentum_beta)
            torch._foreach_add_(self._momentum, dense)
        self._momentum_step = step

    # --- schedule --------------------------------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Optimizer steps taken so far (the schedule position)."""
        return self._step

    @property
    def num_updates(self) -> int:
        """Topology updates applied so far."""
        return self._num_updates

    def is_update_step(self) -> bool:
        """Whether the step just taken is a scheduled topology update."""
        return self.schedule is not None and self.schedule.is_update_step(self._step)

    def prune_fraction(self) -> float:
        """p(t) at the current step (0 without a schedule)."""
        return self.schedule.prune_fraction(self._step) if self.schedule is not None else 0.0

    # --- topology updates ------------------------------------------------------------------------
    def compute_dense_gradient(self, loss_fn: Callable[[], torch.Tensor]) -> None:
        """Dense gradient of ``loss_fn()`` for ``gradient`` growth, leaving ``.grad`` untouched.

        For drivers that want RigL growth from a batch of their choice or at an unscheduled step.
        """
        loss = loss_fn()
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        self._dense_grad = [None if g is None else g.detach() for g in grads]
        self._dense_grad_step = self._step

    def propose(self, specs: Sequence[GrowthSpec]) -> list[CandidateMask]:
        """One candidate topology per spec, from the current masks and weights; the model is untouched.

        Candidates sharing a prune fraction share the pruning work. Costs one boolean mask per
        maskable weight per candidate.
        """
        pruned_by_fraction: dict[float, tuple[list[torch.Tensor], list[int]]] = {}
        candidates = []
        for spec in specs:
            self._rule(spec.growth)  # an unknown rule fails even where no layer regrows
            fraction = self.prune_fraction() if spec.prune_fraction is None else spec.prune_fraction
            if fraction not in pruned_by_fraction:
                counts = [replace_count(n, p.numel(), fraction) for n, p in zip(self._nnz, self.params)]
                kept = [prune_smallest(p, m, k) for p, m, k in zip(self.params, self._masks, counts)]
                pruned_by_fraction[fraction] = (kept, counts)
            kept, counts = pruned_by_fraction[fraction]
            generator = self._generator if spec.seed is None else self._seeded_generator(spec.seed)
            new_masks = {}
            for i, (name, k) in enumerate(zip(self.names, counts)):
                if k == 0:
                    new_masks[name] = self._masks[i]
                    continue
                scores = self._growth_scores(spec.growth, i, generator)
                new_masks[name] = kept[i] | grow_largest(scores, self._masks[i], k)
            candidates.append(CandidateMask(spec, new_masks, fraction, dict(zip(self.names, counts)), self._topology_id))
        return candidates

    def apply(self, candidate: CandidateMask) -> None:
        """Make ``candidate`` the topology: pruned and grown weights become 0, their optimizer state 0."""
        if candidate.topology_id != self._topology_id:
            raise ValueError(f"candidate {candidate.name!r} was proposed from another topology; propose again from the current one")
        with torch.no_grad():
            for i, name in enumerate(self.names):
                new = candidate.masks[name]
                if new is self._masks[i]:
                    continue
                self._zero_outside(i, ~(new & self._masks[i]))
                self._masks[i] = new
                self._mul[i].copy_(new)
                self._ever[i] = self._ever[i] | new
                self._nnz[i] = int(new.sum())
        self._num_updates += 1
        self._topology_id = next(_topology_ids)
        log.info(
            "topology update %d at step %d: %s replaced %d weights (p=%.4f), exploration %.4f",
            self._num_updates,
            self._step,
            candidate.name,
            candidate.num_replaced,
            candidate.prune_fraction,
            self.exploration_rate(),
        )

    def update(self, spec: GrowthSpec | None = None) -> CandidateMask:
        """Propose one candidate (default: the engine's growth rule) and apply it."""
        spec = spec or GrowthSpec(self.growth)
        if not self._has_signal(spec.growth):
            log.warning("no %s signal at step %d (step skipped?); growing at random", spec.growth, self._step)
            spec = GrowthSpec("random", spec.seed, spec.prune_fraction, spec.name)
        candidate = self.propose([spec])[0]
        self.apply(candidate)
        return candidate

    def _rule(self, growth: str) -> GrowthRule:
        if growth not in self._rules:
            raise ValueError(f"unknown growth {growth!r}; expected one of {', '.join(self._rules)}")
        return self._rules[growth]

    def _has_signal(self, growth: str) -> bool:
        needs = self._rule(growth).needs
        if needs == "gradient":
            return self._dense_grad is not None and self._dense_grad_step == self._step
        if needs == "momentum":
            return self._momentum is not None and self._momentum_step == self._step
        return True

    def _growth_scores(self, growth: str, i: int, generator: torch.Generator) -> torch.Tensor:
        rule = self._rule(growth)
        signal = None
        if rule.needs is not None:
            if not self._has_signal(growth):
                hint = "gradient: call compute_dense_gradient()" if rule.needs == "gradient" else "momentum: propose at a scheduled update step"
                raise ValueError(f"{growth} growth has no signal at step {self._step}; pass extra_growth=({growth!r},) with a schedule, or ({hint})")
            source = self._dense_grad if rule.needs == "gradient" else self._momentum
            assert source is not None
            signal = source[i]
        return rule.score(GrowthInputs(self.params[i], self._masks[i], self._ever[i], generator, signal))

    def _seeded_generator(self, seed: int) -> torch.Generator:
        # Distinct per update so that a fixed-seed candidate does not repeat the same growth.
        return torch.Generator().manual_seed((seed * 1_000_003 + self._num_updates) % (2**63))

    def _zero_outside(self, i: int, reset: torch.Tensor) -> None:
        """Zero weight and same-shaped optimizer state at ``reset`` positions (masked_fill gives +0)."""
        param = self.params[i]
        param.masked_fill_(reset, 0)
        if self.optimizer is None:
            return
        for value in self.optimizer.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.masked_fill_(reset, 0)

    # --- inspection ----------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Current boolean masks by parameter name (do not modify in place; use :meth:`apply`)."""
        return dict(zip(self.names, self._masks))

    def density(self) -> float:
        """Achieved density over all maskable weights."""
        return sum(self._nnz) / sum(p.numel() for p in self.params)

    def exploration_rate(self) -> float:
        """Fraction of maskable weights that have ever been active (ITOP's in-time over-parameterization)."""
        return sum(int(e.sum()) for e in self._ever) / sum(p.numel() for p in self.params)

    def layer_table(self) -> list[LayerInfo]:
        """Per-layer shape, density, nonzeros and explored positions."""
        return [LayerInfo(layer.name, layer.module_type, layer.shape, layer.numel, nnz, int(ever.sum())) for layer, nnz, ever in zip(self.layers, self._nnz, self._ever)]

    def remove(self) -> None:
        """Detach from the optimizer; the model keeps its zeros and trains dense from here on."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._mask_weights = False

    # --- snapshots for probe fine-tunes --------------------------------------------------------
    def snapshot(self, device: torch.device | str | None = None) -> Snapshot:
        """Copy weights, buffers, optimizer state, RNG and engine state; pair with :meth:`restore`."""
        model_state = {k: _copy_tensor(v, device) for k, v in self.model.state_dict().items()}
        optim_state = _clone_tree(self.optimizer.state_dict(), device) if self.optimizer is not None else None
        return Snapshot(model_state, optim_state, capture_rng(), self._engine_state())

    def restore(self, snapshot: Snapshot) -> None:
        """Return model, optimizer, RNG and engine to ``snapshot``; the snapshot stays reusable."""
        with torch.no_grad():
            for key, tensor in self.model.state_dict(keep_vars=True).items():
                tensor.copy_(snapshot.model[key])
        if self.optimizer is not None and snapshot.optimizer is not None:
            self.optimizer.load_state_dict(_clone_tree(snapshot.optimizer, None))
        restore_rng(snapshot.rng)
        self._load_engine_state(snapshot.engine)

    def _engine_state(self) -> dict[str, Any]:
        return {
            "masks": list(self._masks),
            "ever": list(self._ever),
            "nnz": list(self._nnz),
            "step": self._step,
            "num_updates": self._num_updates,
            "topology_id": self._topology_id,
            "generator": self._generator.get_state(),
            "dense_grad": (self._dense_grad, self._dense_grad_step),
            "momentum": (self._momentum, self._momentum_step),
        }

    def _load_engine_state(self, state: dict[str, Any]) -> None:
        self._masks = list(state["masks"])
        for mul, mask in zip(self._mul, self._masks):
            mul.copy_(mask)
        self._ever = list(state["ever"])
        self._nnz = list(state["nnz"])
        self._step = state["step"]
        self._num_updates = state["num_updates"]
        self._topology_id = state["topology_id"]
        self._generator.set_state(state["generator"])
        self._dense_grad, self._dense_grad_step = state["dense_grad"]
        self._momentum, self._momentum_step = state["momentum"]
        self._grads_masked = False

    # --- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Masks, schedule position, RNG, exploration and momentum EMA; loadable with ``weights_only=True``.

        Together with the model's and optimizer's state dicts (and the caller's RNG), resuming
        continues bit-identically on the same device.
        """
        momentum = None
        if self._momentum is not None and self._momentum_step == self._step:
            momentum = {n: t.detach().to("cpu", copy=True) for n, t in zip(self.names, self._momentum)}
        return {
            "format": STATE_FORMAT,
            "step": self._step,
            "num_updates": self._num_updates,
            "masks": {n: m.cpu() for n, m in zip(self.names, self._masks)},
            "ever_active": {n: e.cpu() for n, e in zip(self.names, self._ever)},
            "generator": self._generator.get_state(),
            "momentum": momentum,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; the model and optimizer load their own state."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported sparse engine state format {state.get('format')!r}")
        masks = [self._checked_mask(n, state["masks"]) for n in self.names]
        ever = [self._checked_mask(n, state["ever_active"]) for n in self.names]
        self._masks = [m.to(p.device, torch.bool) for m, p in zip(masks, self.params)]
        self._ever = [e.to(p.device, torch.bool) for e, p in zip(ever, self.params)]
        for mul, mask in zip(self._mul, self._masks):
            mul.copy_(mask)
        self._nnz = [int(m.sum()) for m in self._masks]
        self._step = int(state["step"])
        self._num_updates = int(state["num_updates"])
        self._generator.set_state(state["generator"])
        momentum = state.get("momentum")
        if momentum is None:
            self._momentum, self._momentum_step = None, -1
        else:
            self._momentum = [momentum[n].to(p.device, p.dtype) for n, p in zip(self.names, self.params)]
            self._momentum_step = self._step
        self._dense_grad, self._dense_grad_step = None, -1
        self._topology_id = next(_topology_ids)
        self._grads_masked = False

    def _checked_mask(self, name: str, masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if name not in masks:
            raise ValueError(f"no mask for maskable parameter {name!r}")
        mask = masks[name]
        param = self.params[self.names.index(name)]
        if tuple(mask.shape) != tuple(param.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, parameter has {tuple(param.shape)}")
        return mask.bool()


def _copy_tensor(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    return t.detach().to(device, copy=True) if device is not None else t.detach().clone()


def _clone_tree(obj: Any, device: torch.device | str | None) -> Any:
    if isinstance(obj, torch.Tensor):
        return _copy_tensor(obj, device)
    if isinstance(obj, dict):
        return {k: _clone_tree(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone_tree(v, device) for v in obj)
    return copy.deepcopy(obj)
