"""Errors that end a run with a one-line message, and the pytest-style exit codes runs end with."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """pytest's exit codes, with the same meanings."""

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TESTS_COLLECTED = 5


class SafeCompressError(Exception):
    """Base class: the message is shown to the user as one line, never a traceback."""


class UsageError(SafeCompressError):
    """Bad input from the user (bad option, missing or corrupt model file, unknown fixture name): exit 4."""


class CollectionError(SafeCompressError):
    """A test file could not be imported or collected: exit 2, like pytest."""
