"""What the dense training script and the safety tests must agree on: data, architecture, recipe.

Both read ``[tool.safecompress]`` of this folder's ``pyproject.toml``. For text the architecture
depends on the data: the embedding table has one row per token of the vocabulary learned from the
members, so the model factory is built from the data (``vocab_size``, ``max_length``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Mapping

HERE = Path(__file__).resolve().parent
WORDNET = Path("/usr/share/wordnet")
MISSING_WORDNET = f"WordNet is not installed ({WORDNET}/data.noun is missing): apt-get install wordnet-base"


def wordnet_available(root: Path = WORDNET) -> bool:
    return (root / "data.noun").is_file()


def read_settings(root: Path = HERE) -> dict[str, Any]:
    """The ``[tool.safecompress]`` section safecompress itself will use for this folder."""
    from safecompress.config import find_rootdir

    _, section = find_rootdir(root)
    return section


def build_data(name: str, options: Mapping[str, Any], seed: int) -> Any:
    """Members, non-members, population and test of one seeded draw, tokenised (dict inputs:
    ``input_ids`` and ``attention_mask``, N×max_length)."""
    from safecompress.data import build_dataset
    from safecompress.errors import UsageError

    if name == "wordnet" and not wordnet_available(Path(options.get("root", WORDNET))):
        raise UsageError(MISSING_WORDNET)
    return build_dataset(name, **{"seed": seed, **dict(options)})


def build_model(num_classes: int, vocab_size: int, max_length: int) -> Any:
    """A 2-layer BERT, hidden size 128, from a transformers config: nothing is downloaded."""
    from safecompress.models import tiny_bert

    return tiny_bert(num_classes, vocab_size=vocab_size, max_length=max_length)


def model_factory(data: Any) -> Callable[[], Any]:
    """A zero-argument factory sized for ``data``'s vocabulary. A ``functools.partial`` has a stable
    name (with its arguments), which the reference-model cache key includes."""
    return functools.partial(build_model, data.num_classes, int(data.extra["vocab_size"]), int(data.extra["max_length"]))
