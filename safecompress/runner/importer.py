"""Import test files and conftests with graded asserts compiled in.

Every call executes the file anew: a second session in the same process (the benchmark opens one
per seed) sees the files as they are now, with their own fixtures. Callers import each file once
per session (the conftest loader and collection keep what they imported).
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

from safecompress.errors import CollectionError
from safecompress.runner import rewrite


def import_path(path: Path) -> types.ModuleType:
    """Import ``path`` under a unique module name (replacing an earlier import of the same file)."""
    path = path.resolve()
    digest = hashlib.sha1(str(path.parent).encode()).hexdigest()[:8]
    name = f"safecompress_tests_{digest}.{path.stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    setattr(module, rewrite.HELPER_NAME, rewrite.compare)
    try:
        code = rewrite.compile_test_module(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise CollectionError(f"cannot import {path}: {type(exc).__name__}: {exc}") from exc
    sys.modules[name] = module
    parent = str(path.parent)
    if parent not in sys.path:  # tests may import helpers that sit beside them, as under pytest
        sys.path.insert(0, parent)
    try:
        exec(code, module.__dict__)  # noqa: S102 - this is how a test file is imported
    except (Exception, SystemExit) as exc:  # sys.exit() at import time is a broken file, not an exit code
        del sys.modules[name]
        raise CollectionError(f"cannot import {path}: {type(exc).__name__}: {exc}") from exc
    return module
