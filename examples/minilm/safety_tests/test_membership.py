"""The shipped membership tests (source: safecompress/suite/test_membership.py); add your own beside them."""

from safecompress.suite.test_membership import test_loss_attack, test_no_more_leaky_than_dense, test_rmia_gate, test_rmia_in_loop, test_rmia_validation  # noqa: F401
