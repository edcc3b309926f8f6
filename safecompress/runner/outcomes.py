"""Exceptions a test raises to end itself with an outcome other than passed or failed."""

from __future__ import annotations

from typing import NoReturn


class OutcomeException(BaseException):
    """Base of control-flow outcomes; a BaseException so a bare ``except Exception`` in a test keeps it."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Skipped(OutcomeException):
    pass


class XFailed(OutcomeException):
    pass


class Failed(OutcomeException):
    pass


def skip(reason: str = "") -> NoReturn:
    """Skip the running test (e.g. the data it needs is absent)."""
    raise Skipped(reason)


def xfail(reason: str = "") -> NoReturn:
    """Mark the running test as an expected failure."""
    raise XFailed(reason)


def fail(reason: str = "") -> NoReturn:
    """Fail the running test with ``reason``."""
    raise Failed(reason)


skip.Exception = Skipped  # type: ignore[attr-defined]
xfail.Exception = XFailed  # type: ignore[attr-defined]
fail.Exception = Failed  # type: ignore[attr-defined]
