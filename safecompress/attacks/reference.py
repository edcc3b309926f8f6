"""Reference (shadow) models for LiRA and RMIA: trained by a recipe, cached on disk by content hash.

A :class:`ReferenceRecipe` is (model factory, :class:`~safecompress.training.TrainRecipe`). The
cache key hashes the recipe's description (factory name, architecture shapes, training settings,
an optional free-text ``name``), the fingerprint of the exact training data and the seed, so a
repeated gate on the same data loads its references instead of retraining them — and any change to
data, recipe or seed trains new ones (see :mod:`safecompress.attacks.cache_entries` for how an entry
is checked before use: the cache is untrusted input). Code changes *inside* a factory that keep every parameter
name and shape are invisible to the key: change ``name`` when that happens.

References are trained in complementary pairs on random halves of a pool, so every pool sample is
IN for half of them and OUT for the other half (Carlini et al. 2022). Offline attacks use the
population as the pool (targets are OUT of every reference); online attacks add the targets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from safecompress.attacks.cache_entries import CacheEntryError, read_entry, write_entry
from safecompress.data.splits import Split
from safecompress.inference import predict_logits, resolve_device
from safecompress.training import TrainRecipe, callable_name, fit, seeded

log = logging.getLogger(__name__)

CACHE_ENV = "SAFECOMPRESS_CACHE_DIR"
_KEY_VERSION = 2  # 2: entries are MAC-checked safetensors files (cache_entries.py)


@dataclass(frozen=True)
class ReferenceRecipe:
    """How to build and train one reference model; it should mirror the target's own recipe."""

    factory: Callable[[], nn.Module]
    train: TrainRecipe = TrainRecipe()
    name: str = ""

    def describe(self) -> dict[str, Any]:
        """JSON-ready identity of the recipe, hashed into cache keys."""
        describe_factory = getattr(self.factory, "describe", None)
        with seeded(0, torch.device("cpu")):
            model = self.factory()
        return {
            "factory": describe_factory() if callable(describe_factory) else callable_name(self.factory),
            "architecture": architecture_signature(model),
            "train": self.train.describe(),
            "name": self.name,
        }


class Reinitialised:
    """Factory of fresh copies of a template model: same architecture, parameters re-initialised.

    The default when no factory is given. Modules without ``reset_parameters`` keep the template's
    values, and custom initialisations (e.g. BERT's N(0, 0.02)) become PyTorch defaults: pass your
    own factory when the target's initialisation matters.
    """

    def __init__(self, template: nn.Module) -> None:
        self.template = copy.deepcopy(template).cpu()

    def __call__(self) -> nn.Module:
        model = copy.deepcopy(self.template)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        return model

    def describe(self) -> str:
        cls = type(self.template)
        return f"reinitialised {cls.__module__}:{cls.__qualname__}"


RecipeLike = Union[ReferenceRecipe, TrainRecipe, tuple, None]


def as_reference_recipe(recipe: RecipeLike, target: nn.Module) -> ReferenceRecipe:
    """Accept a ReferenceRecipe, a (factory, TrainRecipe) pair, a TrainRecipe (factory: re-initialised
    copy of the target) or None (both defaults — a guess; pass the target's real recipe when known)."""
    if isinstance(recipe, ReferenceRecipe):
        return recipe
    if recipe is None:
        return ReferenceRecipe(Reinitialised(target))
    if isinstance(recipe, TrainRecipe):
        return ReferenceRecipe(Reinitialised(target), recipe)
    if isinstance(recipe, tuple) and len(recipe) == 2 and callable(recipe[0]) and isinstance(recipe[1], TrainRecipe):
        return ReferenceRecipe(recipe[0], recipe[1])
    raise TypeError(f"recipe must be a ReferenceRecipe, a (factory, TrainRecipe) pair, a TrainRecipe or None; got {type(recipe).__name__}")


def architecture_signature(model: nn.Module) -> str:
    """Hash of the model class and every state-dict entry's name, shape and dtype."""
    digest = hashlib.sha256(f"{type(model).__module__}:{type(model).__qualname__}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    return digest.hexdigest()[:16]


def resolve_cache_dir(cache_dir: Union[str, Path, None] = None) -> Path:
    """``cache_dir`` if given, else ``$SAFECOMPRESS_CACHE_DIR/refs``, else ``~/.cache/safecompress/refs``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "safecompress") / "refs"


def reference_membership(pool_size: int, k: int, seed: int) -> np.ndarray:
    """(k, pool_size) IN masks: complementary random halves in pairs (an odd last one gets a half)."""
    if k < 1:
        raise ValueError(f"need at least one reference model, not {k}")
    masks = np.zeros((k, pool_size), dtype=bool)
    for pair in range(0, k, 2):
        order = np.random.default_rng([seed, pair]).permutation(pool_size)
        masks[pair, order[: pool_size // 2]] = True
        if pair + 1 < k:
            masks[pair + 1] = ~masks[pair]
    return masks


def cache_key(description: dict[str, Any], data_fingerprint: str, seed: int) -> str:
    payload = json.dumps({"v": _KEY_VERSION, "recipe": description, "data": data_fingerprint, "seed": seed}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ReferenceModels:
    """Trained references, the IN masks over the pool they were drawn from, and their cache keys."""

    models: list[nn.Module]
    in_pool: np.ndarray
    keys: list[str]
    loaded_from_cache: list[bool]


def train_reference_models(
    recipe: ReferenceRecipe,
    pool: Split,
    k: int,
    *,
    seed: int = 0,
    device: torch.device | str | None = "auto",
    cache_dir: Union[str, Path, None] = None,
) -> ReferenceModels:
    """Train (or load from the cache) ``k`` references on complementary halves of ``pool``."""
    device = resolve_device(device)
    directory = resolve_cache_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    description = recipe.describe()
    masks = reference_membership(len(pool), k, seed)
    models, keys, cached = [], [], []
    for j in range(k):
        part = pool.subset(np.flatnonzero(masks[j]))
        ref_seed = int(np.random.default_rng([seed, j, 1]).integers(2**31))
        key = cache_key(description, part.fingerprint(), ref_seed)
        path = directory / f"{key}.safetensors"
        with seeded(ref_seed, torch.device("cpu")):
            model = recipe.factory()
        hit = _load(model, path, key)
        if not hit:
            started = time.perf_counter()
            fit(model, part, recipe.train, seed=ref_seed, device=device)
            write_entry(path, key, model.state_dict())
            log.info("reference model %d/%d trained on %d samples in %.1fs (cached as %s)", j + 1, k, len(part), time.perf_counter() - started, path.name)
        else:
            log.info("reference model %d/%d loaded from cache %s", j + 1, k, path.name)
        models.append(model.to(device).eval())
        keys.append(key)
        cached.append(hit)
    return ReferenceModels(models, masks, keys, cached)


def _load(model: nn.Module, path: Path, key: str) -> bool:
    """Fill ``model`` from the cache entry at ``path`` when it is this key's own, intact entry; any
    other entry (missing, tampered, non-finite, another key's, a link or a FIFO) is retrained over."""
    try:
        state = read_entry(path, key, model.state_dict())
    except FileNotFoundError:
        return False
    except CacheEntryError as error:
        log.warning("retraining over the cached reference %s: %s", path.name, error)
        return False
    model.load_state_dict(state)
    return True


def concat_splits(splits: Sequence[Split], name: str = "pool") -> Split:
    """Rows of ``splits`` one after another (tensor or dict inputs), keeping source indices."""
    first = splits[0].inputs
    if isinstance(first, Mapping):
        inputs: Any = {key: torch.cat([s.inputs[key] for s in splits]) for key in first}  # type: ignore[index]
    else:
        inputs = torch.cat([s.inputs for s in splits])  # type: ignore[misc]
    labels = torch.cat([s.labels for s in splits])
    return Split(inputs, labels, np.concatenate([s.indices for s in splits]), name)


def outputs_on(models: Sequence[nn.Module], splits: Sequence[Split], device: torch.device, batch_size: Optional[int] = None) -> np.ndarray:
    """(len(models), Σ len(splits), C) float32 logits of every model on the splits, in order."""
    return np.stack([np.concatenate([predict_logits(model, split, device, batch_size).numpy() for split in splits]) for model in models]).astype(np.float32)


def reference_in_masks(references: ReferenceModels, n_rows: int, pool_rows: Optional[np.ndarray] = None) -> np.ndarray:
    """IN masks over the attack table: the pool's masks placed at ``pool_rows`` (default: the pool is the table)."""
    if pool_rows is None:
        return references.in_pool
    masks = np.zeros((len(references.models), n_rows), dtype=bool)
    masks[:, pool_rows] = references.in_pool
    return masks
