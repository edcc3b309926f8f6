"""What train_dense.py and the safety tests share: the data draw and the pretrained architecture."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Mapping

HERE = Path(__file__).resolve().parent


def read_settings(root: Path = HERE) -> dict[str, Any]:
    """The ``[tool.safecompress]`` section safecompress itself uses for this folder."""
    from safecompress.config import find_rootdir

    return find_rootdir(root)[1]


def build_data(options: Mapping[str, Any], seed: int) -> Any:
    """WordNet glosses tokenised by MiniLM's vocabulary (dict inputs: input_ids, attention_mask)."""
    from safecompress.data import build_dataset

    return build_dataset("wordnet", **{"seed": seed, **dict(options)})


def pretrained_classifier(folder: str, num_classes: int) -> Any:
    """MiniLM-L6 from its local folder with a fresh classification head (never downloads)."""
    from safecompress.modelio import load_model

    return load_model(Path(folder), num_classes=num_classes).train()


def model_factory(data: Any) -> Callable[[], Any]:
    """What reference models and a state-dict parent are built from: pretrained MiniLM, fresh head."""
    return functools.partial(pretrained_classifier, str(data.extra["pretrained_dir"]), data.num_classes)
