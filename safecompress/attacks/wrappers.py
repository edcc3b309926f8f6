"""Model-in wrappers: batched inference on the session device, the default protocol, then the attacks.

:func:`make_attack_inputs` turns a model and a :class:`~safecompress.data.DataSplits` into
:class:`AttackInputs` by the default protocol of METHOD.md §4: members and non-members are each
split into calibration and evaluation halves by ``seed``, evaluation is balanced, the population
serves as calibration non-members and as the reference models' training pool, and every sample is
queried the same way (no augmentation). :func:`run_attacks` builds the inputs once for several
attacks, so the tier-0 attacks share one inference pass and LiRA and RMIA share references.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from safecompress.attacks.data_structures import AttackInputs, AttackResults, MetricOptions, Role, assign_roles
from safecompress.attacks.memo import AttackMemo, model_fingerprint
from safecompress.attacks.reference import RecipeLike, ReferenceRecipe, as_reference_recipe, concat_splits, outputs_on, reference_in_masks, train_reference_models
from safecompress.attacks.registry import BUILTIN_ATTACKS, GRADIENTS, REFERENCES, AttackSpec
from safecompress.data.splits import DataSplits, Split
from safecompress.errors import UsageError
from safecompress.inference import inference_batch_size, model_logits, predict_logits, resolve_device

DEFAULT_REFERENCES = 2
Device = Union[torch.device, str, None]


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` registered in ``model``: the classifier head of the usual architectures."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer; pass layer= explicitly")
    return linears[-1]


@torch.no_grad()
def last_layer_gradients(model: nn.Module, split: Split, *, device: Device = "auto", batch_size: Optional[int] = None, layer: Optional[nn.Module] = None) -> np.ndarray:
    """Per-sample gradient of the cross-entropy w.r.t. the last layer's parameters, flattened, (n, g).

    The layer's input is captured by a forward hook; ``torch.func.vmap(grad(...))`` then
    differentiates the layer alone for the whole batch at once — no per-sample Python loop, no
    backward through the network. This is exact only when the layer's output *is* the logits,
    which is checked.
    """
    device = resolve_device(device)
    batch_size = batch_size or inference_batch_size(device)
    model.to(device).eval()
    layer = layer if layer is not None else last_linear(model)
    params = {name: p.detach() for name, p in layer.named_parameters()}
    captured: dict[str, torch.Tensor] = {}

    def capture(_module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        captured["input"], captured["output"] = args[0], output

    def sample_loss(p: dict[str, torch.Tensor], h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(layer, p, (h.unsqueeze(0),)), y.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    handle = layer.register_forward_hook(capture)
    chunks = []
    try:
        for x, y in split.batches(batch_size, device):
            logits = model_logits(model, x)
            if captured["output"].shape != logits.shape or not torch.equal(captured["output"], logits):
                raise ValueError(f"the output of {type(layer).__name__} is not the model's logits; pass the classifier head as layer=")
            grads = per_sample(params, captured["input"], y)
            chunks.append(torch.cat([g.reshape(len(y), -1) for g in grads.values()], dim=1).float().cpu())
    finally:
        handle.remove()
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, sum(p.numel() for p in params.values())), dtype=np.float32)


def make_attack_inputs(
    model: nn.Module,
    splits: DataSplits,
    *,
    device: Device = "auto",
    batch_size: Optional[int] = None,
    seed: int = 0,
    calibration_fraction: float = 0.5,
    refs: int = 0,
    online: bool = False,
    recipe: RecipeLike = None,
    cache_dir: Union[str, Path, None] = None,
    gradients: bool = False,
    gradient_layer: Optional[nn.Module] = None,
) -> AttackInputs:
    """Query ``model`` (moved to ``device``) on members, non-members and population; add what is asked.

    Rows are members, then non-members, then population. ``refs`` reference models are trained by
    ``recipe`` (see :func:`~safecompress.attacks.reference.as_reference_recipe`) on halves of the
    population, or with ``online`` on halves of all rows, and cached under ``cache_dir``. Inside a
    running session the result is memoised for an unchanged model and data (:mod:`~safecompress.attacks.memo`).
    """
    device = resolve_device(device)
    model.to(device)
    memo = _session_memo() if gradient_layer is None else None
    work = _work_key(model, splits) if memo is not None else ()
    return _memoised_inputs(memo, work, model, splits, device, batch_size, seed, calibration_fraction, refs, online, recipe, cache_dir, gradients, gradient_layer)


def _memoised_inputs(memo: Optional[AttackMemo], work: tuple[str, ...], model: nn.Module, splits: DataSplits, device: torch.device, *arguments: Any) -> AttackInputs:
    """The inputs from ``memo`` under ``work`` (:func:`_work_key`) and ``arguments``, computed and kept on a miss."""
    key = None if memo is None else ("inputs", *work, str(device), *(repr(a) for a in arguments))
    if key is not None:
        cached = memo.get(key)  # type: ignore[union-attr]
        if cached is not None:
            model.eval()  # as a computed call leaves it
            return cached
    inputs = _attack_inputs(model, splits, device, *arguments)
    if key is not None:
        memo.put(key, inputs)  # type: ignore[union-attr]
    return inputs


def _work_key(model: nn.Module, splits: DataSplits) -> tuple[str, ...]:
    """What attack work on ``model`` depends on beyond its arguments: its weights and the data it is asked about."""
    return (model_fingerprint(model), *(part.fingerprint() for part in (splits.members, splits.non_members, splits.population)))


def _session_memo() -> Optional[AttackMemo]:
    from safecompress.runner.context import current_defaults

    defaults = current_defaults()
    return None if defaults is None else defaults.caches.setdefault("attacks", AttackMemo())


def _attack_inputs(
    model: nn.Module,
    splits: DataSplits,
    device: torch.device,
    batch_size: Optional[int],
    seed: int,
    calibration_fraction: float,
    refs: int,
    online: bool,
    recipe: RecipeLike,
    cache_dir: Union[str, Path, None],
    gradients: bool,
    gradient_layer: Optional[nn.Module],
) -> AttackInputs:
    parts = [splits.members, splits.non_members, splits.population]
    sizes = [len(p) for p in parts]
    n = sum(sizes)
    inputs = inputs_from_logits(splits, [predict_logits(model, p, device, batch_size).numpy() for p in parts], seed=seed, calibration_fraction=calibration_fraction)
    grads = np.concatenate([last_layer_gradients(model, p, device=device, batch_size=batch_size, layer=gradient_layer) for p in parts]) if gradients else None
    ref_logits = ref_in = None
    if refs:
        recipe = session_reference_recipe(recipe)
        pool, pool_rows = (concat_splits(parts), None) if online else (splits.population, np.arange(sizes[0] + sizes[1], n))
        trained = train_reference_models(as_reference_recipe(recipe, model), pool, refs, seed=seed, device=device, cache_dir=cache_dir)
        ref_logits = outputs_on(trained.models, parts, device, batch_size)
        ref_in = reference_in_masks(trained, n, pool_rows)
    return dataclasses.replace(inputs, gradients=grads, ref_logits=ref_logits, ref_in=ref_in)


def inputs_from_logits(splits: DataSplits, logits: Sequence[np.ndarray], *, seed: int = 0, calibration_fraction: float = 0.5) -> AttackInputs:
    """Attack inputs from a model's logits already computed on members, non-members and population
    (in that order, one array per part): the rows, labels, membership and roles exactly as
    :func:`make_attack_inputs` lays them out, without querying the model again."""
    parts = [splits.members, splits.non_members, splits.population]
    sizes = [len(p) for p in parts]
    if [len(part) for part in logits] != sizes:
        raise ValueError(f"logits for {[len(part) for part in logits]} rows, splits of {sizes} rows")
    labels = np.concatenate([p.labels.cpu().numpy() for p in parts])
    membership = np.r_[np.ones(sizes[0]), np.zeros(sizes[1] + sizes[2])]
    role = np.r_[assign_roles(sizes[0], sizes[1], calibration_fraction, seed), np.full(sizes[2], Role.POPULATION)]
    source = np.concatenate([p.indices for p in parts])
    return AttackInputs(labels, membership, role, logits=np.concatenate(logits), source_indices=source)


def session_reference_recipe(recipe: RecipeLike) -> RecipeLike:
    """``recipe``, or inside a running session its ``train_recipe`` (and ``model_factory`` when the
    suite has one): references follow the target's own recipe without wiring. Outside a session with
    no recipe: a warning (once per call site), and the default recipe."""
    if recipe is not None:
        return recipe
    from safecompress.runner.context import current_defaults

    defaults = current_defaults()
    if defaults is None:
        warnings.warn(
            "no reference recipe given and no safety session running: references are re-initialised copies of the target trained by the default TrainRecipe; pass the target's own recipe",
            UserWarning,
            stacklevel=3,
        )
        return None
    factory = defaults.model_factory()
    train = defaults.train_recipe()
    return ReferenceRecipe(factory, train) if factory is not None else train


def _spec(name: str, registry: Mapping[str, Union[AttackSpec, Callable[..., AttackResults]]]) -> AttackSpec:
    attack = registry.get(name)
    if attack is None:
        raise UsageError(f"unknown attack {name!r}; known: {', '.join(sorted(registry))}")
    if isinstance(attack, AttackSpec):
        return attack
    return AttackSpec(name, attack, tier=-1)  # a plugin's bare function: cost unknown, needs nothing extra


def _call(spec: AttackSpec, target: Any, offered: dict[str, Any], options: dict[str, Any]) -> AttackResults:
    """Pass ``offered`` arguments (seed, device, options) only to attacks that accept them; ``target``
    is the AttackInputs, or ``(model, splits)`` for an attack that queries the model."""
    params = inspect.signature(spec.function).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if open_ended or k in params}
    if spec.queries_model:
        model, splits = target
        return spec.function(model, splits, **{**kwargs, **options})
    return spec(target, **{**kwargs, **options})


def run_attacks(
    names: Sequence[str],
    model: nn.Module,
    splits: DataSplits,
    *,
    device: Device = "auto",
    refs: Optional[int] = None,
    recipe: RecipeLike = None,
    cache_dir: Union[str, Path, None] = None,
    seed: int = 0,
    online: bool = False,
    batch_size: Optional[int] = None,
    calibration_fraction: float = 0.5,
    options: Optional[MetricOptions] = None,
    registry: Optional[Mapping[str, Union[AttackSpec, Callable[..., AttackResults]]]] = None,
    attack_options: Optional[Mapping[str, dict[str, Any]]] = None,
) -> dict[str, AttackResults]:
    """Run several attacks on one inference pass; ``attack_options[name]`` holds per-attack keywords.

    ``refs`` defaults to :data:`DEFAULT_REFERENCES` when an attack needs references.
    """
    specs = [_spec(name, registry if registry is not None else BUILTIN_ATTACKS) for name in names]
    needs = frozenset().union(*(s.needs for s in specs))
    k = (refs if refs is not None else DEFAULT_REFERENCES) if REFERENCES in needs else (refs or 0)
    device = resolve_device(device)
    model.to(device)
    memo = _session_memo()
    work = _work_key(model, splits) if memo is not None else ()  # computed once, for the inputs and every result
    inputs = None
    if any(not spec.queries_model for spec in specs):  # attacks that query the model need no cached outputs
        inputs = _memoised_inputs(memo, work, model, splits, device, batch_size, seed, calibration_fraction, k, online, recipe, cache_dir, GRADIENTS in needs, None)
    offered = {"seed": seed, "device": device, "options": options}
    protocol = {"seed": seed, "calibration_fraction": calibration_fraction, "references": k, "online_references": online, "device": str(device)}
    inputs_key = (*work, repr(protocol), repr(recipe), str(cache_dir), batch_size) if memo is not None else None
    results = {}
    for spec in specs:
        chosen = dict((attack_options or {}).get(spec.name, {}))
        key = None if inputs_key is None else ("result", *inputs_key, spec.name, id(spec.function), repr(options), repr(sorted(chosen.items())))
        result = memo.get(key) if key is not None else None  # type: ignore[union-attr]
        if result is None:
            result = _call(spec, (model, splits) if spec.queries_model else inputs, offered, chosen)
            result.extra.setdefault("protocol", protocol)
            if key is not None:
                memo.put(key, result)  # type: ignore[union-attr]
        results[spec.name] = result
    return results


def run_attack(
    name: str,
    model: nn.Module,
    splits: DataSplits,
    *,
    device: Device = "auto",
    refs: Optional[int] = None,
    recipe: RecipeLike = None,
    cache_dir: Union[str, Path, None] = None,
    seed: int = 0,
    online: bool = False,
    batch_size: Optional[int] = None,
    calibration_fraction: float = 0.5,
    options: Optional[MetricOptions] = None,
    registry: Optional[Mapping[str, Union[AttackSpec, Callable[..., AttackResults]]]] = None,
    **attack_options: Any,
) -> AttackResults:
    """One attack by name on ``model`` and ``splits``; extra keywords go to the attack itself."""
    return run_attacks(
        [name],
        model,
        splits,
        device=device,
        refs=refs,
        recipe=recipe,
        cache_dir=cache_dir,
        seed=seed,
        online=online,
        batch_size=batch_size,
        calibration_fraction=calibration_fraction,
        options=options,
        registry=registry,
        attack_options={name: attack_options},
    )[name]
