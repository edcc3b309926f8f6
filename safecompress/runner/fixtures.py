"""Fixtures by argument name, with the three scopes a compression run needs.

- ``session``: built once (data splits, reference models);
- ``model``: rebuilt whenever the model under test changes (the driver swaps candidate masks);
- ``test``: rebuilt for every test.

A fixture is visible to tests below the folder of the conftest (or the module) that defines it; the
nearest definition wins, then conftest over plugin over built-in, as in pytest.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, TypeVar, overload

from safecompress.errors import UsageError

SCOPES = ("session", "model", "test")
FIXTURE_ATTR = "__safecompress_fixture__"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FixtureSpec:
    """What ``@fixture`` attaches to a function before a manager knows where it lives."""

    scope: str
    name: str | None


@overload
def fixture(func: F) -> F: ...
@overload
def fixture(*, scope: str = "test", name: str | None = None) -> Callable[[F], F]: ...


def fixture(func: Callable[..., Any] | None = None, *, scope: str = "test", name: str | None = None) -> Any:
    """Declare a fixture; tests receive its value by naming it as a parameter. ``yield`` for teardown."""
    if scope not in SCOPES:
        raise ValueError(f"fixture scope must be one of {SCOPES}, not {scope!r}")

    def decorate(f: F) -> F:
        setattr(f, FIXTURE_ATTR, FixtureSpec(scope, name))
        return f

    return decorate(func) if func is not None else decorate


def argnames(func: Callable[..., Any]) -> tuple[str, ...]:
    """Names a function requests: parameters without defaults (pytest's ``getfuncargnames``)."""
    params = inspect.signature(func).parameters.values()
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty)


@dataclass(eq=False)
class FixtureDef:
    name: str
    func: Callable[..., Any]
    scope: str
    baseid: str  # folder (or module file) the definition is visible under; "" = everywhere
    rank: int  # 0 built-in, 1 plugin, 2 conftest, 3 test module
    order: int = 0
    argnames: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        self.argnames = argnames(self.func)

    def visible_from(self, path: str) -> bool:
        if not self.baseid:
            return True
        return path == self.baseid or path.startswith(self.baseid.rstrip("/") + "/")

    def priority(self) -> tuple[int, int, int]:
        return (len(self.baseid), self.rank, self.order)


class FixtureLookupError(Exception):
    """A requested fixture does not exist or cannot be built in this scope."""


@dataclass
class _Cached:
    value: Any
    finalizer: Generator[Any, None, None] | None


class FixtureManager:
    """Holds definitions, resolves names for a test file, and caches values per scope."""

    def __init__(self) -> None:
        self._defs: dict[str, list[FixtureDef]] = {}
        self._counter = 0
        self._caches: dict[str, dict[FixtureDef, _Cached]] = {scope: {} for scope in SCOPES}
        self._parsed: list[Any] = []  # namespaces already parsed by this manager (kept by identity)

    # --- definitions -------------------------------------------------------------------------
    def add(self, func: Callable[..., Any], *, name: str | None = None, scope: str = "test", baseid: str = "", rank: int = 1) -> FixtureDef:
        if scope not in SCOPES:
            raise UsageError(f"fixture {name or func.__name__!r}: scope must be one of {SCOPES}, not {scope!r}")
        self._counter += 1
        fixturedef = FixtureDef(name or func.__name__, func, scope, baseid, rank, self._counter)
        self._defs.setdefault(fixturedef.name, []).append(fixturedef)
        return fixturedef

    def parse_namespace(self, namespace: Any, baseid: str, rank: int) -> int:
        """Register every ``@fixture`` function found on a module or plugin object; returns the count."""
        found = 0
        for attr in dir(namespace):
            obj = getattr(namespace, attr, None)
            spec = getattr(obj, FIXTURE_ATTR, None)
            if isinstance(spec, FixtureSpec) and callable(obj):
                self.add(obj, name=spec.name or attr, scope=spec.scope, baseid=baseid, rank=rank)
                found += 1
        return found

    def parse_namespace_once(self, namespace: Any, baseid: str, rank: int) -> int:
        """:meth:`parse_namespace`, unless this manager has parsed ``namespace`` already (a test
        module holding several tests); the memory is this manager's, never the module's."""
        if any(seen is namespace for seen in self._parsed):
            return 0
        self._parsed.append(namespace)
        return self.parse_namespace(namespace, baseid, rank)

    def lookup(self, name: str, path: str) -> FixtureDef:
        candidates = [d for d in self._defs.get(name, []) if d.visible_from(path)]
        if not candidates:
            raise FixtureLookupError(f"fixture {name!r} not found; available: {', '.join(self.available(path))}")
        return max(candidates, key=FixtureDef.priority)

    def available(self, path: str) -> list[str]:
        return sorted(n for n, defs in self._defs.items() if any(d.visible_from(path) for d in defs))

    def names(self) -> list[str]:
        return sorted(self._defs)

    # --- values ------------------------------------------------------------------------------
    def get_value(self, name: str, path: str, requester_scope: str = "test", _stack: tuple[str, ...] = ()) -> Any:
        """Build (or reuse) fixture ``name`` as seen from ``path``; dependencies first."""
        if name in _stack:
            raise FixtureLookupError(f"fixture dependency cycle: {' -> '.join((*_stack, name))}")
        fixturedef = self.lookup(name, path)
        if SCOPES.index(fixturedef.scope) > SCOPES.index(requester_scope):
            raise FixtureLookupError(f"scope mismatch: {requester_scope}-scoped {_stack[-1] if _stack else 'caller'!r} requests {fixturedef.scope}-scoped fixture {name!r}")
        cache = self._caches[fixturedef.scope]
        if fixturedef in cache:
            return cache[fixturedef].value
        kwargs = {arg: self.get_value(arg, path, fixturedef.scope, (*_stack, name)) for arg in fixturedef.argnames}
        if inspect.isgeneratorfunction(fixturedef.func):
            generator = fixturedef.func(**kwargs)
            try:
                value = next(generator)
            except StopIteration:
                raise FixtureLookupError(f"fixture {name!r} did not yield a value") from None
            cache[fixturedef] = _Cached(value, generator)
        else:
            value = fixturedef.func(**kwargs)
            cache[fixturedef] = _Cached(value, None)
        return value

    def teardown(self, scope: str) -> list[BaseException]:
        """Finish yield fixtures of ``scope`` and of narrower scopes, which may depend on them
        (newest first); return the errors instead of raising."""
        errors: list[BaseException] = []
        for narrower in reversed(SCOPES[SCOPES.index(scope) + 1 :]):
            errors.extend(self._teardown_one(narrower))
        return errors + self._teardown_one(scope)

    def _teardown_one(self, scope: str) -> list[BaseException]:
        errors: list[BaseException] = []
        cache = self._caches[scope]
        for cached in reversed(list(cache.values())):
            if cached.finalizer is None:
                continue
            try:
                next(cached.finalizer)
            except StopIteration:
                pass
            except Exception as exc:  # noqa: BLE001 - a teardown error becomes an error report
                errors.append(exc)
            else:
                errors.append(FixtureLookupError("a fixture yielded more than once"))
        cache.clear()
        return errors

    def teardown_all(self) -> list[BaseException]:
        return self.teardown("session")


def relpath(path: Path, root: Path) -> str:
    """A stable id for a file or folder: relative to the root when below it, else absolute."""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
    return "" if rel == "." else rel
