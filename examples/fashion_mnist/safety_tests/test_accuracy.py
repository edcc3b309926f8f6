"""Task performance, from the library suite (safecompress/suite/test_accuracy.py, read it there):

- ``test_accuracy`` (cheap, steering target): accuracy within ``accuracy_drop_max`` of the dense
  parent's on population rows; ranks candidates on one half, is met or missed on the other.
- ``test_held_out_accuracy`` (gate, requirement): the same drop, judged on the held-out test split
  that nothing in the loop sees, paired against the dense parent on the same rows.
"""

from safecompress.suite.test_accuracy import test_accuracy, test_held_out_accuracy  # noqa: F401
