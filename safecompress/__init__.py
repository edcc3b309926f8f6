"""SafeCompress: test-driven model compression.

``import safecompress`` stays light (no torch): the pytest plugin and ``conftest.py`` files import it.
Heavy names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "fixture": "safecompress.runner.fixtures",
    "mark": "safecompress.runner.marks",
    "skip": "safecompress.runner.outcomes",
    "xfail": "safecompress.runner.outcomes",
    "fail": "safecompress.runner.outcomes",
    "Record": "safecompress.runner.record",
    "hookimpl": "safecompress.hookspecs",
    "DataSplits": "safecompress.data.splits",
    "Split": "safecompress.data.splits",
    "UsageError": "safecompress.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'safecompress' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
