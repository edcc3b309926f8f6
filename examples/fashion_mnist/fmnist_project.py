"""What the dense training script and the safety tests must agree on: data, architecture, recipe.

Both read ``[tool.safecompress]`` of this folder's ``pyproject.toml``: the members the dense model is
trained on are exactly the members the attacks test for, and the reference models of LiRA and RMIA
are trained by the target's own recipe. Keep anything the two sides share in this one module.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Mapping

HERE = Path(__file__).resolve().parent
DATA_ENV = "FMNIST_DATA"  # export FMNIST_DATA=fashion-mnist for the full Debian set
DATASETS = ("fashion-mnist-embedded", "fashion-mnist")


def read_settings(root: Path = HERE) -> dict[str, Any]:
    """The ``[tool.safecompress]`` section safecompress itself will use for this folder."""
    from safecompress.config import find_rootdir

    _, section = find_rootdir(root)
    return section


def data_name(configured: str | None) -> str:
    """``$FMNIST_DATA`` when set, else the configured ``data`` name."""
    name = os.environ.get(DATA_ENV) or configured or DATASETS[0]
    if name not in DATASETS:
        from safecompress.errors import UsageError

        raise UsageError(f"{DATA_ENV}/data must be one of {', '.join(DATASETS)}, got {name!r}")
    return name


def build_data(name: str, options: Mapping[str, Any], seed: int) -> Any:
    """The four roles (members, non-members, population, test) of one seeded draw."""
    from safecompress.data import build_dataset

    return build_dataset(name, **{"seed": seed, **dict(options)})


def build_model(num_classes: int) -> Any:
    """The architecture: SafeCompress's SmallCNN (two conv blocks, two linear layers, ~0.4 M weights)."""
    from safecompress.models import small_cnn

    return small_cnn(num_classes=num_classes)


def model_factory(num_classes: int) -> Callable[[], Any]:
    """A zero-argument factory; a ``functools.partial`` has a stable name, which the reference-model
    cache key includes, so a rerun reloads references instead of training them again."""
    return functools.partial(build_model, num_classes)
