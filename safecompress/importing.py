"""Resolving ``package.module:function`` references that users write in options and config."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from safecompress.errors import UsageError


def import_callable(reference: str, label: str) -> Callable[..., Any]:
    """The callable named by ``module:attribute``; ``label`` names the option in the one-line error."""
    module_name, _, attribute = reference.partition(":")
    if not module_name:
        raise UsageError(f"{label}: {reference!r} is not a package.module:function reference")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # the module's own code may raise anything while importing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{label}: cannot import {module_name}: {type(exc).__name__}: {first}") from None
    function: Any = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
    if not callable(function):
        raise UsageError(f"{label}: {module_name} has no callable {attribute!r}")
    return function
