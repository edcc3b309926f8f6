"""The shipped safety suite, as a library: fixtures and tests any project can use.

- ``safecompress.suite.fixtures``: the in-loop audit rows and set, the session's reference outputs,
  the dense baseline, population accuracy and the gate's attacks. A project's conftest takes them
  all with one line, ``safecompress_plugins = ["safecompress.suite.fixtures"]``.
- ``test_accuracy.py`` and ``test_membership.py`` (beside this file): the shipped tests. A project's
  ``safety_tests/test_*.py`` re-exports them by importing them (imported tests are collected when they
  come from a test module), or copies and edits them (``safecompress init`` does the former).
- :func:`suite_folder`: this folder, a test path of its own (its ``conftest.py`` loads the fixtures);
  ``safecompress demo`` runs it when no ``safety_tests/`` is present.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = "safecompress.suite.fixtures"


def suite_folder() -> Path:
    """The folder holding the shipped suite's test files and their conftest."""
    return Path(__file__).resolve().parent
