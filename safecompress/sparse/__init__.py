"""Dynamic sparse training: exact ERK masks, prune/regrow, schedules, candidates, artifacts (METHOD.md §1–2).

Independent of the test runner; the driver joins the two. See ``docs/sparse.md``.
"""

from __future__ import annotations

from safecompress.sparse.allocation import erk_densities, exact_counts, initial_masks, layer_counts
from safecompress.sparse.artifact import (
    ArtifactInfo,
    SparseArtifactError,
    export_program,
    export_state_dict,
    is_sparse_artifact,
    load_sparse_artifact,
    read_artifact_metadata,
    save_sparse_artifact,
)
from safecompress.sparse.engine import Snapshot, SparseEngine
from safecompress.sparse.layers import LayerInfo, MaskableParam, find_maskable, format_layer_table, model_densities, scope_warning
from safecompress.sparse.schedule import PruneSchedule
from safecompress.sparse.topology import BUILTIN_GROWTH, GROWTH_RULES, CandidateMask, GrowthInputs, GrowthRule, GrowthSpec

__all__ = [
    "BUILTIN_GROWTH",
    "GROWTH_RULES",
    "ArtifactInfo",
    "CandidateMask",
    "GrowthInputs",
    "GrowthRule",
    "GrowthSpec",
    "LayerInfo",
    "MaskableParam",
    "PruneSchedule",
    "Snapshot",
    "SparseArtifactError",
    "SparseEngine",
    "erk_densities",
    "exact_counts",
    "export_program",
    "export_state_dict",
    "find_maskable",
    "model_densities",
    "scope_warning",
    "format_layer_table",
    "initial_masks",
    "is_sparse_artifact",
    "layer_counts",
    "load_sparse_artifact",
    "read_artifact_metadata",
    "save_sparse_artifact",
]
