"""A compressed model must stay useful: task accuracy is a safety test like any other.

It is ``cheap``, so it runs on every candidate during compression, and its ``severity`` of 2 makes a
failure count double when candidates are ranked: the driver never buys privacy with a useless model.
"""

import safecompress
from safecompress.attacks.audit import audit_accuracy


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
@safecompress.mark.performance  # while red, the driver backs remedies off
def test_accuracy(loop_inputs, record, thresholds):
    """Top-1 accuracy on non-members of the audit set (never trained on), gated on its 95 % interval."""
    accuracy = audit_accuracy(loop_inputs)  # non-member rows of the audit set, Clopper–Pearson interval
    # lenient (the default with an interval): fail only when the whole interval is below the limit
    record.at_least("accuracy", accuracy.value, thresholds["accuracy_min"], interval=(accuracy.low, accuracy.high))
