"""Task performance is a safety test too: a compressed model must stay useful (METHOD.md §3.3)."""

import safecompress


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
@safecompress.mark.performance(metric="accuracy")
def test_accuracy(population_accuracy, dense_baseline, record, thresholds):
    """Accuracy on the population split stays within ``accuracy_drop_max`` of the dense parent's on
    the same rows (and above the absolute floor ``accuracy_min``). A performance test: while it is
    red, remedies back off. Judged on the point estimate: it steers, and a lenient interval could not
    see a one-point drop."""
    interval = population_accuracy
    limit = thresholds["accuracy_min"]
    if dense_baseline is not None:
        record.metric("dense_accuracy", dense_baseline["accuracy"])
        limit = max(limit, dense_baseline["accuracy"] - thresholds["accuracy_drop_max"])
    record.at_least("accuracy", interval.value, limit, interval=(interval.low, interval.high), policy="point")
