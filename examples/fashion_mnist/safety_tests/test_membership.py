"""Membership inference, from the library suite (safecompress/suite/test_membership.py):

- ``test_loss_attack``, ``test_rmia_in_loop`` (cheap, steering targets): judged on every candidate
  on the small audit set; they steer selection and remedies and are reported as met or missed,
  never making the run red by themselves. The in-loop RMIA limit is calibrated from the requirement.
- ``test_rmia_gate``, ``test_no_more_leaky_than_dense`` (gate, requirements): RMIA with the gate's
  references on every member, at least ``rmia_gain_min`` below the dense parent's on the same rows,
  and loss-attack AUC no higher than the parent's (paired DeLong). They decide the exit code.

To write your own, copy a function from there and mark it ``@safecompress.mark.target(serves=...)``
or ``@safecompress.mark.requirement`` (docs/writing-tests.md).
"""

from safecompress.suite.test_membership import test_loss_attack, test_no_more_leaky_than_dense, test_rmia_gate, test_rmia_in_loop, test_rmia_validation  # noqa: F401
