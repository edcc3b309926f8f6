"""Task performance is a safety test too: a compressed model must stay useful (METHOD.md §3.3)."""
import safecompress
from safecompress.inference import predict_logits
from safecompress.metrics import clopper_pearson


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
def test_accuracy(model, data, device, record, thresholds):
    """Top-1 accuracy on non-members (never trained on), gated on its Clopper–Pearson interval."""
    logits = predict_logits(model, data.non_members, device)
    correct = int((logits.argmax(1) == data.non_members.labels).sum())
    interval = clopper_pearson(correct, len(data.non_members))
    record.at_least("accuracy", interval.value, thresholds["accuracy_min"], interval=(interval.low, interval.high))
