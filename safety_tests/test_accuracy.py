"""The shipped performance tests (source: safecompress/suite/test_accuracy.py); add your own beside them."""

from safecompress.suite.test_accuracy import test_accuracy, test_held_out_accuracy  # noqa: F401
