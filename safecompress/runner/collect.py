"""The built-in collector: ``test_*.py`` files, ``test_*`` functions, parametrize, ``-k``, ``-m``, cost."""

from __future__ import annotations

import inspect
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

from safecompress.errors import CollectionError, UsageError
from safecompress.hookspecs import hookimpl
from safecompress.runner.expression import compile_expression
from safecompress.runner.fixtures import FIXTURE_ATTR, argnames, relpath
from safecompress.runner.importer import import_path
from safecompress.runner.items import TestItem
from safecompress.runner.marks import Mark, get_marks

if TYPE_CHECKING:
    from safecompress.config import Config
    from safecompress.runner.session import SafetySession


def is_test_file(path: Path) -> bool:
    return path.suffix == ".py" and path.name.startswith("test_")


def find_test_files(paths: Iterable[Path]) -> list[Path]:
    """Files to collect from the given paths: a file as is, a folder recursively (sorted, no hidden dirs)."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in sorted(path.rglob("test_*.py")) if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts[:-1]))
    return files


def _parametrize_sets(function: Any, marks: Sequence[Mark]) -> list[tuple[str, dict[str, Any]]]:
    """Cartesian product of every ``parametrize`` mark: (id, {argname: value})."""
    axes: list[list[tuple[str, dict[str, Any]]]] = []
    for mark in marks:
        if mark.name != "parametrize":
            continue
        names, values = mark.args
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in inspect.signature(function).parameters]
        if missing:
            raise UsageError(f"{function.__name__}: parametrize names {missing} are not parameters of the test")
        ids = mark.kwargs.get("ids")
        axis = []
        for i, value in enumerate(values):
            row = value if len(names) > 1 else (value,)
            if len(row) != len(names):
                raise UsageError(f"{function.__name__}: parametrize row {value!r} does not match {names}")
            label = ids[i] if ids else "-".join(_id_for(v) for v in row)
            axis.append((label, dict(zip(names, row))))
        axes.append(axis)
    if not axes:
        return [("", {})]
    return [("-".join(label for label, _ in combo), {k: v for _, d in combo for k, v in d.items()}) for combo in itertools.product(*axes)]


def _id_for(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    return type(value).__name__


def from_test_module(function: Any) -> bool:
    """Whether ``function`` was defined in a test file (``test_*.py``), such as the library suite's:
    a project re-exports those tests by importing them."""
    source = getattr(sys.modules.get(function.__module__), "__file__", None)
    return source is not None and is_test_file(Path(source))


def collect_module(path: Path, root: Path) -> list[TestItem]:
    module = import_path(path)
    rel = relpath(path, root)
    module_marks = list(getattr(module, "safecompress_marks", []))
    items: list[TestItem] = []
    for name, obj in vars(module).items():
        if not (name.startswith("test") and inspect.isfunction(obj)) or hasattr(obj, FIXTURE_ATTR):
            continue
        if obj.__module__ != module.__name__ and not from_test_module(obj):
            continue  # a helper imported from elsewhere; tests re-exported from a test module are collected
        marks = get_marks(obj) + [m.mark if hasattr(m, "mark") else m for m in module_marks]
        if {m.name for m in marks} >= {"target", "requirement"}:
            raise CollectionError(f"{rel}::{name} is marked both safecompress.mark.target and safecompress.mark.requirement: a check either gates or steers")
        for label, params in _parametrize_sets(obj, marks):
            nodeid = f"{rel}::{name}" + (f"[{label}]" if label else "")
            requested = tuple(a for a in argnames(obj) if a not in params)
            items.append(TestItem(nodeid, path, rel, obj, requested, params, marks, module))
    return items


class Collector:
    """Built-in plugin: turns files into items and applies ``-k``, ``-m`` and the cost filter."""

    @hookimpl(trylast=True)
    def safecompress_collect_file(self, path: Path, session: "SafetySession") -> Optional[list[TestItem]]:
        if not is_test_file(path):
            return None
        return collect_module(path, session.config.rootdir)

    @hookimpl
    def safecompress_collection_modifyitems(self, session: "SafetySession", config: "Config", items: list[TestItem]) -> None:
        keyword = config.getoption("keyword")
        markexpr = config.getoption("markexpr")
        cost = config.getoption("cost")
        selected = items
        if keyword:
            match_k = compile_expression(keyword)
            selected = [i for i in selected if match_k(lambda word, kw=i.keywords(): any(word.lower() in k.lower() for k in kw))]
        if markexpr:
            match_m = compile_expression(markexpr)
            selected = [i for i in selected if match_m(lambda word, names=i.marker_names(): word in names)]
        if cost:
            selected = [i for i in selected if i.cost == cost]
        session.deselected = [i for i in items if i not in selected]
        items[:] = selected
