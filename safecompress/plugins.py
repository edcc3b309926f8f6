"""The plugin manager: built-ins and the ``safecompress`` entry-point group (conftest files are
registered by the runner, :mod:`safecompress.runner.conftests`).

Set ``SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD=1`` to load no third-party plugin (the test suite does).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable, Optional

import pluggy

from safecompress import hookspecs
from safecompress.errors import UsageError

ENTRY_POINT_GROUP = "safecompress"
DISABLE_AUTOLOAD_ENV = "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD"
HOOK_PREFIX = "safecompress_"

BUILTIN_PLUGINS = (
    "safecompress.runner.collect:Collector",
    "safecompress.runner.runtest",
    "safecompress.builtin_fixtures",
    "safecompress.architectures",
    "safecompress.sparse.topology",
    "safecompress.modelio",
    "safecompress.data.builtin",
    "safecompress.reporters.files",
    "safecompress.remedies",
    "safecompress.attacks.registry",
    "safecompress.driver.selection",
)


class PluginManager(pluggy.PluginManager):
    """Accepts undecorated ``safecompress_*`` functions too, so a conftest needs no imports."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Optional[pluggy.HookimplOpts]:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) and callable(getattr(plugin, name, None)):
            return {}  # type: ignore[return-value]
        return opts


def _load_builtin(reference: str) -> Any:
    module_name, _, attr = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)() if attr else module


def get_plugin_manager(load_entrypoints: bool = True, extra_builtins: Iterable[str] = ()) -> PluginManager:
    """Built-ins registered exactly like third-party plugins, then the entry-point group."""
    pm = PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for reference in (*BUILTIN_PLUGINS, *extra_builtins):
        pm.register(_load_builtin(reference), name=f"builtin:{reference}")
    if load_entrypoints and not os.environ.get(DISABLE_AUTOLOAD_ENV):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin is the user's input, not our crash
            raise UsageError(f"could not load a plugin of the {ENTRY_POINT_GROUP!r} entry-point group: {type(exc).__name__}: {exc}") from exc
    return pm


def check_hooks(pm: pluggy.PluginManager) -> None:
    """Every ``safecompress_*`` implementation must match a hook of the contract: a misspelt name
    would otherwise be silently ignored (pluggy's ``check_pending``)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        unspecified = [(name, caller) for name, caller in vars(pm.hook).items() if not caller.has_spec()]
        hook = next((name for name, caller in unspecified if any(i.plugin is exc.plugin for i in caller.get_hookimpls())), "?")
        raise UsageError(f"plugin {plugin_name(pm, exc.plugin)!r} implements {hook!r}, which is not a safecompress hook (a misspelling?)") from None


def collect_registry(pm: pluggy.PluginManager, hook_name: str) -> dict[str, Any]:
    """Call a ``register`` hook and return what plugins registered, by name (later plugins override)."""
    found: dict[str, Any] = {}

    def register(name: str, value: Any, *_: Any, **__: Any) -> None:
        found[name] = value

    getattr(pm.hook, hook_name)(register=register)
    return found


def plugin_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    return pm.get_name(plugin) or repr(plugin)
