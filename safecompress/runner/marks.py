"""Markers: ``@safecompress.mark.cost("cheap")``, ``.remedy``, ``.severity``, ``.parametrize``, ``.skip``...

Marks are stored on the function; the collector reads them. Any other ``mark.NAME`` is a plain
keyword for ``-m`` selection, as in pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
MARKS_ATTR = "__safecompress_marks__"
COSTS = ("cheap", "validation", "gate")
ROLES = ("requirement", "target")


@dataclass(frozen=True)
class Mark:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MarkDecorator:
    mark: Mark

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]):
            return store_mark(args[0], self.mark)
        return MarkDecorator(Mark(self.mark.name, self.mark.args + args, {**self.mark.kwargs, **kwargs}))


def store_mark(func: F, mark: Mark) -> F:
    marks = list(getattr(func, MARKS_ATTR, []))
    marks.append(mark)
    setattr(func, MARKS_ATTR, marks)
    return func


def get_marks(obj: Any) -> list[Mark]:
    """Marks applied to ``obj``, innermost decorator first (module-level ``safecompress_marks`` too)."""
    return list(reversed(getattr(obj, MARKS_ATTR, [])))


class _MarkGenerator:
    """``mark.cost("gate")``, ``mark.remedy("flooding", level=0.1)``, ``mark.severity(2.0)``..."""

    def cost(self, level: str) -> MarkDecorator:
        """How expensive a test is: ``cheap`` runs inside training on every candidate, ``validation``
        on the checkpoint about to ship (and at the gate), ``gate`` only at the gate."""
        if level not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, not {level!r}")
        return MarkDecorator(Mark("cost", (level,)))

    def remedy(self, *ladder: str | tuple[str, dict[str, Any]], **options: Any) -> MarkDecorator:
        """The training-time defenses the driver switches on while this test is red, in order: a rung
        at its cap that stops moving the test's metric hands over to the next (``options`` are the
        first rung's; give a later rung its own as ``("flooding", {"level": 0.2})``)."""
        if not ladder:
            raise ValueError("mark.remedy needs at least one remedy name")
        rungs: list[tuple[str, dict[str, Any]]] = []
        for index, rung in enumerate(ladder):
            name, rung_options = (rung, {}) if isinstance(rung, str) else rung
            if not isinstance(name, str) or not name or not isinstance(rung_options, dict):
                raise ValueError(f"mark.remedy rung {rung!r} is not a name or a (name, options) pair")
            rungs.append((name, {**rung_options, **(options if index == 0 else {})}))
        if len({name for name, _ in rungs}) != len(rungs):
            raise ValueError(f"mark.remedy names a remedy twice: {[name for name, _ in rungs]}")
        return MarkDecorator(Mark("remedy", tuple(name for name, _ in rungs), {"rungs": rungs}))

    @property
    def requirement(self) -> MarkDecorator:
        """What the shipped model must satisfy: decides the exit code (the default for ``gate`` tests;
        mark a ``cheap`` test so only when its in-loop evidence is what you mean to gate on)."""
        return MarkDecorator(Mark("requirement"))

    def target(self, serves: str | None = None) -> MarkDecorator:
        """What the loop aims at: judged on cheap in-loop evidence, it steers selection and remedies
        and is reported as met or missed, but never makes a run red by itself. ``serves`` names the
        requirement it stands in for (a test name), which reports show beside it."""
        if serves is not None and (not isinstance(serves, str) or not serves):
            raise ValueError(f"mark.target(serves=...) takes a test name, not {serves!r}")
        return MarkDecorator(Mark("target", (), {"serves": serves}))

    def severity(self, weight: float) -> MarkDecorator:
        """How much a failure of this test counts when candidates are ranked (default 1)."""
        return MarkDecorator(Mark("severity", (float(weight),)))

    @property
    def performance(self) -> MarkDecorator:
        """A task-performance test (accuracy, perplexity...): its utility metric is what selection
        maximises (``performance(metric="acc")``; default: the test's one recorded check), and while it
        is red on the model being judged, steering backs remedies off instead of escalating them."""
        return MarkDecorator(Mark("performance"))

    def parametrize(self, argnames: str | Sequence[str], argvalues: Sequence[Any], ids: Sequence[str] | None = None) -> MarkDecorator:
        """Run the test once per value (or tuple of values for several comma-separated names)."""
        return MarkDecorator(Mark("parametrize", (argnames, list(argvalues)), {"ids": list(ids) if ids is not None else None}))

    def skip(self, reason: str = "") -> MarkDecorator:
        return MarkDecorator(Mark("skip", (), {"reason": reason}))

    def skipif(self, condition: bool, reason: str = "") -> MarkDecorator:
        return MarkDecorator(Mark("skipif", (bool(condition),), {"reason": reason}))

    def xfail(self, reason: str = "", strict: bool = False) -> MarkDecorator:
        return MarkDecorator(Mark("xfail", (), {"reason": reason, "strict": strict}))

    def __getattr__(self, name: str) -> MarkDecorator:
        if name.startswith("_"):
            raise AttributeError(name)
        return MarkDecorator(Mark(name))


mark = _MarkGenerator()
