"""Data for membership tests: the :class:`DataSplits` contract and the built-in dataset builders.

Importing this package does not import torch; the builders do, when called.
"""

from __future__ import annotations

from safecompress.data.builtin import BUILTIN_DATASETS, build_dataset, registered_datasets, resolve_builder
from safecompress.data.images import digits, fashion_mnist_embedded, fashion_mnist_full
from safecompress.data.splits import DataSplits, Split
from safecompress.data.text import wordnet_glosses

__all__ = [
    "BUILTIN_DATASETS",
    "DataSplits",
    "Split",
    "build_dataset",
    "digits",
    "fashion_mnist_embedded",
    "fashion_mnist_full",
    "registered_datasets",
    "resolve_builder",
    "wordnet_glosses",
]
