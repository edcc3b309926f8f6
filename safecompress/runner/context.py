"""What library calls made *inside* a running safety session may default to: the session's own
training recipe and model factory, and a once-per-run warning record.

A user's test that calls ``make_attack_inputs(model, data, refs=4)`` then trains its references by
the recipe the session trains by, without wiring a ``ReferenceRecipe`` by hand. The defaults live in
a :class:`contextvars.ContextVar` that the session sets while it runs tests and resets afterwards:
scoped to that run (and to its thread), never process-wide.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

if TYPE_CHECKING:
    from safecompress.runner.session import SafetySession

log = logging.getLogger("safecompress")


@dataclass
class SessionDefaults:
    """The running session's recipe and factory (looked up lazily), the warnings already given, and
    caches that live as long as the session (by name; e.g. the attack memo of
    :mod:`safecompress.attacks.memo`)."""

    session: "SafetySession"
    warned: set[str] = field(default_factory=set)
    caches: dict[str, Any] = field(default_factory=dict)

    def train_recipe(self) -> Any:
        return self.session.train_recipe()

    def model_factory(self) -> Optional[Callable[[], Any]]:
        """The ``model_factory`` fixture when the suite has one that builds a model without arguments."""
        if "model_factory" not in self.session.fixtures.names():
            return None
        factory = self.session.fixture_value("model_factory")
        try:
            needs = [p for p in inspect.signature(factory).parameters.values() if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        except (TypeError, ValueError):
            return None
        return None if needs else factory

    def warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            log.warning(message)


_CURRENT: ContextVar[Optional[SessionDefaults]] = ContextVar("safecompress_session_defaults", default=None)


def current_defaults() -> Optional[SessionDefaults]:
    """The defaults of the session running tests in this context, or None outside one."""
    return _CURRENT.get()


@contextlib.contextmanager
def session_defaults(defaults: SessionDefaults) -> Iterator[SessionDefaults]:
    token = _CURRENT.set(defaults)
    try:
        yield defaults
    finally:
        _CURRENT.reset(token)
