"""The built-in datasets, registered through ``safecompress_register_datasets`` like any plugin's.

``[tool.safecompress] data = NAME`` names a registered dataset or a ``package.module:function``
reference to a builder; :func:`build_dataset` resolves either.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from safecompress.data.images import digits, fashion_mnist_embedded, fashion_mnist_full
from safecompress.data.splits import DataSplits
from safecompress.data.text import wordnet_glosses
from safecompress.errors import UsageError
from safecompress.hookspecs import hookimpl
from safecompress.importing import import_callable

if TYPE_CHECKING:
    import pluggy

BUILTIN_DATASETS: dict[str, Callable[..., DataSplits]] = {
    "fashion-mnist-embedded": fashion_mnist_embedded,
    "fashion-mnist": fashion_mnist_full,
    "digits": digits,
    "wordnet": wordnet_glosses,
}


@hookimpl
def safecompress_register_datasets(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, build in BUILTIN_DATASETS.items():
        register(name, build)


def resolve_builder(name_or_ref: str, registry: Mapping[str, Callable[..., Any]] | None = None) -> Callable[..., Any]:
    """The builder registered as ``name_or_ref``, or the function a ``package.module:function`` names."""
    registry = BUILTIN_DATASETS if registry is None else registry
    if name_or_ref in registry:
        return registry[name_or_ref]
    module_name, colon, attribute = name_or_ref.partition(":")
    if not colon:
        raise UsageError(f"unknown dataset {name_or_ref!r}; known: {', '.join(sorted(registry))} (or give a builder as package.module:function)")
    return import_callable(name_or_ref, f"dataset {name_or_ref!r}")


def registered_datasets(pm: "pluggy.PluginManager") -> dict[str, Callable[..., Any]]:
    """The built-ins plus what the plugins of ``pm`` register (a plugin may replace a built-in)."""
    found = dict(BUILTIN_DATASETS)
    pm.hook.safecompress_register_datasets(register=lambda name, build: found.__setitem__(name, build))
    return found


def build_dataset(
    name_or_ref: str,
    *,
    pm: Optional["pluggy.PluginManager"] = None,
    registry: Mapping[str, Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> DataSplits:
    """Build the dataset ``name_or_ref`` with ``kwargs`` (sizes, ``seed``, builder options).

    Names are looked up in ``registry`` if given, else in what the plugins of ``pm`` registered, else
    in the built-ins. Options the builder does not take are a usage error naming the ones it does,
    not a ``TypeError``.
    """
    if registry is None and pm is not None:
        registry = registered_datasets(pm)
    builder = resolve_builder(name_or_ref, registry)
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        accepted = ", ".join(inspect.signature(builder).parameters)
        raise UsageError(f"dataset {name_or_ref!r}: {exc}; it takes: {accepted}") from None
    except ValueError:  # no signature to check (a builtin or C function): let the call decide
        pass
    splits = builder(**kwargs)
    if not isinstance(splits, DataSplits):
        raise UsageError(f"dataset {name_or_ref!r} returned {type(splits).__name__}, not safecompress.data.DataSplits")
    return splits
