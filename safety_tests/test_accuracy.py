"""The shipped performance test (source: ``safecompress/suite/test_accuracy.py``).

Imported tests are collected here, under this file's name; add your own beside them as plain
``test_*`` functions.
"""

from safecompress.suite.test_accuracy import test_accuracy  # noqa: F401
