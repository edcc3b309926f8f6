"""The shipped performance test: population accuracy within accuracy_drop_max of the dense parent."""

from safecompress.suite.test_accuracy import test_accuracy, test_held_out_accuracy  # noqa: F401
