"""Task performance is a safety test too: a compressed model must stay useful (METHOD.md §3.3)."""
import safecompress
from safecompress.attacks import Role
from safecompress.metrics import clopper_pearson


def audit_accuracy(inputs):
    """Top-1 accuracy on the audit set's non-members (never trained on), with its Clopper–Pearson interval."""
    rows = (inputs.membership == 0) & (inputs.role != Role.POPULATION)
    correct = int((inputs.logits[rows].argmax(1) == inputs.labels[rows]).sum())
    return clopper_pearson(correct, int(rows.sum()))


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
@safecompress.mark.performance
def test_accuracy(loop_inputs, dense_loop_inputs, record, thresholds):
    """Accuracy stays within ``accuracy_drop_max`` of the dense parent's on the same rows (and above
    the absolute floor ``accuracy_min``). A performance test: while it is red, remedies back off.
    Judged on the point estimate: it steers, and a lenient interval on 500 rows could not see a
    one-point drop."""
    interval = audit_accuracy(loop_inputs)
    limit = thresholds["accuracy_min"]
    if dense_loop_inputs is not None:
        dense = audit_accuracy(dense_loop_inputs).value
        record.metric("dense_accuracy", dense)
        limit = max(limit, dense - thresholds["accuracy_drop_max"])
    record.at_least("accuracy", interval.value, limit, interval=(interval.low, interval.high), policy="point")
