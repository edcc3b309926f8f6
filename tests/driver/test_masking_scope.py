"""The masking scope a run uses (issue 13): include/exclude globs and the embeddings switch, from
pyproject or the command line, reach the sparse engine; both densities are reported over it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from safecompress.driver.settings import CompressSettings
from safecompress.driver.updates import sparse_engine
from safecompress.errors import UsageError
from safecompress.sparse import PruneSchedule, model_densities, scope_warning
from safecompress.sparse.topology import BUILTIN_GROWTH


class TextModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(500, 32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.head = nn.Linear(32, 3)


def engine_names(settings: CompressSettings) -> list[str]:
    model = TextModel()
    optimizer = torch.optim.Adam(model.parameters())
    engine = sparse_engine(model, optimizer, settings, PruneSchedule(100, num_updates=2), BUILTIN_GROWTH)
    return engine.names


def test_the_default_scope_takes_attention_projections_but_not_embeddings(tmp_path: Path) -> None:
    assert engine_names(CompressSettings(out=tmp_path)) == ["attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]
    assert engine_names(CompressSettings.from_sources({}, {"embeddings": True}))[0] == "embed.weight"
    assert engine_names(CompressSettings.from_sources({"include": ["head.*", "embed.*"]}, {})) == ["embed.weight", "head.weight"]
    assert engine_names(CompressSettings.from_sources({"exclude": ["attn.*"]}, {})) == ["head.weight"]


@pytest.mark.parametrize("value", ["head.*", [1], [""]])
def test_patterns_must_be_lists_of_globs(value) -> None:
    with pytest.raises(UsageError, match="include"):
        CompressSettings.from_sources({}, {"include": value})


def test_both_densities_and_the_scope_warning() -> None:
    model = TextModel()
    with torch.no_grad():
        model.head.weight[:, :16] = 0
    densities = model_densities(model, ["head.weight"])
    assert densities["maskable_density"] == pytest.approx(0.5)
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(p.count_nonzero()) for p in model.parameters())  # attention biases start at zero too
    assert densities["whole_model_density"] == pytest.approx(nonzero / total) and densities["maskable_parameters"] == 96
    assert "are maskable" in scope_warning(densities)
    assert scope_warning(model_densities(nn.Linear(10, 10), ["weight"])) is None
