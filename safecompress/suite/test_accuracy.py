"""Task performance is a safety test too: a compressed model must stay useful (METHOD.md §3.3).

The requirement is judged at the gate on the held-out test split, against the dense parent on the
same rows; the loop steers toward a target on population rows, which it may use (the test split it
never sees, so the gate's number is honest).
"""

import safecompress
from safecompress.metrics import paired_rate_difference


@safecompress.mark.cost("cheap")
@safecompress.mark.severity(2.0)
@safecompress.mark.performance(metric="accuracy")
@safecompress.mark.target(serves="test_held_out_accuracy")
def test_accuracy(split_accuracy, dense_baseline, record, thresholds):
    """The steering target: accuracy within ``accuracy_drop_max`` of the dense parent's on the same
    population rows (and above ``accuracy_min``). Candidates and checkpoints are ranked on the
    ``select`` rows (``accuracy``, the utility); the target is met or missed on the ``confirm`` rows,
    which ranked nothing, so the best of many checkpoints is not accepted on its luck (the winner's
    curse). A performance test: while it is missed, remedies back off. Point estimate: it steers,
    and a lenient interval could not see a one-point drop."""
    select, confirm = split_accuracy["select"], split_accuracy["confirm"]
    record.metric("accuracy", select.value)
    limit = thresholds["accuracy_min"]
    if dense_baseline is not None:
        record.metric("dense_accuracy_confirm", dense_baseline["accuracy_confirm"])
        limit = max(limit, dense_baseline["accuracy_confirm"] - thresholds["accuracy_drop_max"])
    record.at_least("accuracy_confirm", confirm.value, limit, interval=(confirm.low, confirm.high), policy="point")


@safecompress.mark.cost("gate")
@safecompress.mark.requirement
def test_held_out_accuracy(model, data, device, dense_test_correct, record, thresholds):
    """The requirement: accuracy on the held-out test split (never used for any selection) at most
    ``accuracy_drop_max`` below the dense parent's on the same rows, on the point estimate, with the
    paired 95 % interval of the difference reported. Without a parent (an absolute-only gate): at
    least ``accuracy_min``."""
    from safecompress.suite.fixtures import correct_rows

    correct = correct_rows(model, data.test, device)
    record.metric("test_accuracy", correct.mean())
    if dense_test_correct is None:
        record.at_least("test_accuracy_absolute", correct.mean(), thresholds["accuracy_min"], policy="point")
        return
    difference = paired_rate_difference(correct, dense_test_correct)
    record.metric("dense_test_accuracy", dense_test_correct.mean())
    record.at_least("test_accuracy_minus_dense", difference.value, -thresholds["accuracy_drop_max"], interval=(difference.low, difference.high), policy="point")
