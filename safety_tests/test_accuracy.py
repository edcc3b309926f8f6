"""Task performance is a safety test too: a compressed model must stay useful (METHOD.md §3.3)."""
import safecompress
from safecompress.attacks import Role
from safecompress.metrics import clopper_pearson


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
def test_accuracy(loop_inputs, record, thresholds):
    """Top-1 accuracy on the non-members (never trained on), gated on its Clopper–Pearson interval."""
    rows = (loop_inputs.membership == 0) & (loop_inputs.role != Role.POPULATION)
    correct = int((loop_inputs.logits[rows].argmax(1) == loop_inputs.labels[rows]).sum())
    interval = clopper_pearson(correct, int(rows.sum()))
    record.at_least("accuracy", interval.value, thresholds["accuracy_min"], interval=(interval.low, interval.high))
