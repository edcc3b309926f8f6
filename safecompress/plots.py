"""Report figures: log-scale ROC curves and score histograms as PNG files.

matplotlib is an optional extra (``pip install 'safecompress[plots]'``), imported only when a plot
is drawn. Figures are built with the object-oriented API on an Agg canvas, so plotting never
changes the caller's pyplot backend or state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from safecompress.fsutil import atomic_path

if TYPE_CHECKING:
    from safecompress.attacks.data_structures import AttackResults


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plots need matplotlib, an optional extra: pip install 'safecompress[plots]'") from error
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_roc(results: Union["AttackResults", Sequence["AttackResults"]], path: Union[str, Path], *, title: Optional[str] = None) -> Path:
    """ROC curves on log–log axes, where the low-FPR regime that matters is visible.

    FPR and TPR of 0 cannot be drawn on a log axis; they are drawn at half the smallest nonzero
    rate the evaluation can resolve, 1/(2n), which is also where the axes start.
    """
    many = [results] if not isinstance(results, Sequence) else list(results)
    figure = _figure(5.0, 5.0)
    ax = figure.add_subplot()
    floor = 0.5 / max(max(r.n_non_members, r.n_members) for r in many)
    for r in many:
        rate = r.tpr_at_fpr.get(0.01)
        label = f"{r.attack}: AUC {r.auc.value:.3f}" + (f", TPR@1% {rate.tpr.value:.1%}" if rate else "")
        ax.plot(np.maximum(r.roc.fpr, floor), np.maximum(r.roc.tpr, floor), label=label, drawstyle="steps-post")
    ax.plot([floor, 1], [floor, 1], color="grey", linestyle="--", linewidth=0.8, label="chance")
    for fpr in (0.01, 0.001):
        if fpr > floor:
            ax.axvline(fpr, color="grey", linestyle=":", linewidth=0.6)
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1), xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title(title or "membership inference ROC")
    ax.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def plot_score_histogram(results: "AttackResults", path: Union[str, Path], *, bins: int = 50, title: Optional[str] = None) -> Path:
    """Member and non-member score distributions, with the calibrated threshold when there is one."""
    figure = _figure(6.0, 4.0)
    ax = figure.add_subplot()
    scores, members = results.scores, results.membership.astype(bool)
    finite = np.isfinite(scores)
    edges = np.histogram_bin_edges(scores[finite], bins=bins)
    ax.hist(scores[finite & members], bins=edges, alpha=0.55, label=f"members ({int(members.sum())})")
    ax.hist(scores[finite & ~members], bins=edges, alpha=0.55, label=f"non-members ({int((~members).sum())})")
    if results.threshold is not None and np.isfinite(results.threshold):
        ax.axvline(results.threshold, color="black", linestyle="--", linewidth=1.0, label="calibrated threshold")
    ax.set(xlabel=f"{results.attack} score (higher = more likely member)", ylabel="samples")
    ax.set_title(title or f"{results.attack}: AUC {results.auc}")
    ax.legend(fontsize="small")
    return _save(figure, path)


def _save(figure: Any, path: Union[str, Path]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:  # the temporary name has no image suffix: say the format
        figure.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")
    return path
