"""Conftest files: imported from the root down to each test folder, once per session, and
registered as plugins (their hooks) and fixture namespaces (their ``@fixture`` functions)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pluggy

from safecompress.errors import CollectionError, UsageError
from safecompress.runner.fixtures import FixtureManager, relpath
from safecompress.runner.importer import import_path


class ConftestLoader:
    """Imports ``conftest.py`` files from the root down to each test folder, once per session."""

    def __init__(self, pm: pluggy.PluginManager, rootdir: Path) -> None:
        self.pm = pm
        self.rootdir = rootdir.resolve()
        self.modules: dict[Path, Any] = {}
        self.declared: dict[Path, list[Any]] = {}  # the modules each conftest names in safecompress_plugins

    def folders_for(self, path: Path) -> list[Path]:
        path = path.resolve()
        folder = path if path.is_dir() else path.parent
        if folder == self.rootdir or self.rootdir in folder.parents:
            chain = [folder, *folder.parents]
            return list(reversed(chain[: chain.index(self.rootdir) + 1]))
        return [folder]

    def load_for(self, paths: Iterable[Path]) -> None:
        for path in paths:
            targets = [path]
            if path.is_dir():
                targets += [p for p in sorted(path.rglob("conftest.py")) if not any(part.startswith((".", "__")) for part in p.relative_to(path).parts[:-1])]
            for target in targets:
                for folder in self.folders_for(target):
                    self.load(folder / "conftest.py")

    def load(self, conftest: Path) -> None:
        conftest = conftest.resolve()
        if conftest in self.modules or not conftest.is_file():
            return
        try:
            module = import_path(conftest)
        except CollectionError as exc:
            raise UsageError(str(exc)) from exc
        name = f"conftest:{relpath(conftest, self.rootdir) or 'conftest.py'}"
        if callable(getattr(module, "safecompress_addoption", None)):
            raise UsageError(f"{name}: safecompress_addoption never runs in a conftest (options are parsed before conftests load); put it in an installed plugin (the safecompress entry-point group)")
        self.modules[conftest] = module
        self.pm.register(module, name=name)
        self.declared[conftest] = [self._load_declared(plugin, name) for plugin in declared_plugins(module, name)]

    def _load_declared(self, dotted: str, conftest: str) -> Any:
        """A module a conftest names in ``safecompress_plugins``: imported once, its hooks registered."""
        try:
            module = importlib.import_module(dotted)
        except ImportError as exc:
            raise UsageError(f"{conftest}: safecompress_plugins names {dotted!r}, which cannot be imported ({exc})") from None
        if not self.pm.is_registered(module):
            self.pm.register(module, name=f"plugin-module:{dotted}")
        return module

    def parse_fixtures(self, fixtures: FixtureManager) -> None:
        """Each conftest's fixtures, and those of the modules it declares, visible from its folder
        down (a conftest's own fixtures win over its declared modules' of the same name)."""
        for conftest, module in self.modules.items():
            baseid = relpath(conftest.parent, self.rootdir)
            for declared in self.declared.get(conftest, []):
                fixtures.parse_namespace(declared, baseid=baseid, rank=2)
            fixtures.parse_namespace(module, baseid=baseid, rank=2)


def declared_plugins(module: Any, name: str) -> list[str]:
    """The dotted module names a conftest declares in ``safecompress_plugins`` (as pytest's
    ``pytest_plugins``): how a project takes a library's fixtures in one line."""
    declared = getattr(module, "safecompress_plugins", [])
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, (list, tuple)) or not all(isinstance(d, str) and d for d in declared):
        raise UsageError(f"{name}: safecompress_plugins must be a list of module names, not {declared!r}")
    return list(declared)


def register_plugin_fixtures(pm: pluggy.PluginManager, fixtures: FixtureManager) -> None:
    """Fixtures plugins provide through ``safecompress_register_fixtures`` (rank below conftests)."""

    def register(function: Callable[..., Any], name: Optional[str] = None, scope: str = "test") -> None:
        fixtures.add(function, name=name, scope=scope, rank=1)

    pm.hook.safecompress_register_fixtures(register=register)
