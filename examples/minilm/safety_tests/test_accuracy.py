"""The shipped performance test (source: safecompress/suite/test_accuracy.py); add your own beside it."""

from safecompress.suite.test_accuracy import test_accuracy, test_held_out_accuracy  # noqa: F401
