"""Errors that end a run with a one-line message and a pytest-style exit code (see session.ExitCode)."""

from __future__ import annotations


class SafeCompressError(Exception):
    """Base class: the message is shown to the user as one line, never a traceback."""


class UsageError(SafeCompressError):
    """Bad input from the user (bad option, missing or corrupt model file, unknown fixture name): exit 4."""


class CollectionError(SafeCompressError):
    """A test file could not be imported or collected: exit 2, like pytest."""
