"""A collected test: one function with one set of parameters, and what its marks declare."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from safecompress.runner.marks import Mark


@dataclass(eq=False)
class TestItem:
    __test__ = False  # not a pytest test class

    nodeid: str
    path: Path
    relpath: str  # id of the file relative to the root: fixtures' visibility is decided on it
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    module: Any = None  # the test file's module: its fixtures are visible to its tests

    def fixture_namespaces(self) -> list[Any]:
        """Modules whose ``@fixture`` functions this test sees: its file's and, for a test imported
        from another test module (a suite's), that module's too."""
        found = [self.module, sys.modules.get(getattr(self.function, "__module__", ""))]
        return [m for i, m in enumerate(found) if m is not None and all(m is not other for other in found[:i])]

    @property
    def name(self) -> str:
        return self.nodeid.rsplit("::", 1)[-1]

    def get_mark(self, name: str) -> Optional[Mark]:
        return next((m for m in self.marks if m.name == name), None)

    @property
    def cost(self) -> str:
        mark = self.get_mark("cost")
        return mark.args[0] if mark else "cheap"

    @property
    def role(self) -> str:
        """``target`` (steers, never makes a run red) or ``requirement`` (decides the exit code): as
        marked; unmarked tests are requirements, as they were before roles existed."""
        if self.get_mark("target") is not None:
            return "target"
        return "requirement"

    @property
    def role_declared(self) -> bool:
        return self.get_mark("target") is not None or self.get_mark("requirement") is not None

    @property
    def serves(self) -> Optional[str]:
        """The requirement a target stands in for (None: not said, or not a target)."""
        mark = self.get_mark("target")
        return None if mark is None else mark.kwargs.get("serves")

    @property
    def remedy_ladder(self) -> list[tuple[str, dict[str, Any]]]:
        """The declared remedies in order, each with its options (empty: the test has none)."""
        mark = self.get_mark("remedy")
        if mark is None:
            return []
        return [(name, dict(options)) for name, options in mark.kwargs["rungs"]]

    @property
    def utility_metric(self) -> Optional[str]:
        """The metric a performance test declares as its utility (None: not declared)."""
        mark = self.get_mark("performance")
        return None if mark is None else mark.kwargs.get("metric")

    @property
    def severity(self) -> float:
        mark = self.get_mark("severity")
        return float(mark.args[0]) if mark else 1.0

    def marker_names(self) -> set[str]:
        """Names ``-m`` matches: every mark's name, plus the cost level (``-m cheap``)."""
        return {m.name for m in self.marks} | {self.cost}

    def keywords(self) -> set[str]:
        """Words ``-k`` matches by substring: the test name, its file and folder names, its marks."""
        return {self.name, self.function.__name__, *self.path.with_suffix("").parts[-2:], *self.marker_names()}
