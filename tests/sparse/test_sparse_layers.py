"""Which parameters are maskable: torch layers, transformers layers, users' own, by name pattern."""

from __future__ import annotations

import os

import torch
from torch import nn

from safecompress.sparse import SparseEngine, find_maskable, format_layer_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Custom(nn.Module):
    """A user's own layer: a raw 2-D parameter the defaults do not know."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(6, 5))
        self.scale = nn.Parameter(torch.ones(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.kernel.t()) * self.scale


class Zoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 5)
        self.c1 = nn.Conv1d(5, 5, 3)
        self.c2 = nn.Conv2d(5, 5, 3)
        self.c3 = nn.Conv3d(5, 5, 3)
        self.bn = nn.BatchNorm2d(5)
        self.ln = nn.LayerNorm(5)
        self.attn = nn.MultiheadAttention(5, 1)
        self.custom = Custom()
        self.head = nn.Linear(5, 3)
        self.tied = nn.Linear(5, 20, bias=False)
        self.tied.weight = self.emb.weight


def test_default_layers_exclude_biases_norms_embeddings():
    names = [m.name for m in find_maskable(Zoo())]
    assert names == ["c1.weight", "c2.weight", "c3.weight", "attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]


def test_embeddings_on_request_and_tied_weight_listed_once():
    names = [m.name for m in find_maskable(Zoo(), embeddings=True)]
    assert names[0] == "emb.weight" and "tied.weight" not in names


def test_include_patterns_reach_users_own_parameters_but_never_1d():
    names = [m.name for m in find_maskable(Zoo(), include=["custom.*", "attn.in_proj_weight"])]
    assert names == ["attn.in_proj_weight", "custom.kernel"]
    assert "head.weight" not in [m.name for m in find_maskable(Zoo(), exclude=["head.*"])]


def test_transformers_linear_and_gpt2_conv1d_are_maskable():
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2Model

    bert = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_labels=2))
    names = [m.name for m in find_maskable(bert)]
    assert len(names) == 2 * 6 + 2 and all(n.endswith("weight") for n in names)
    assert not any("embeddings" in n or "LayerNorm" in n for n in names)
    gpt2 = GPT2Model(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    found = find_maskable(gpt2)
    assert {m.module_type for m in found} == {"Conv1D"} and len(found) == 4


def test_layer_table_reports_shape_density_nonzeros():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 4))
    engine = SparseEngine(model, None, 0.25, distribution="uniform")
    rows = engine.layer_table()
    assert [r.shape for r in rows] == [(20, 10), (4, 20)]
    assert [r.nnz for r in rows] == [50, 20] and rows[0].density == 0.25
    assert rows[0].as_dict()["numel"] == 200
    text = format_layer_table(rows)
    assert "0.2500" in text and text.splitlines()[-1].startswith("total")


def test_compiled_model_keeps_plain_names():
    model = nn.Sequential(nn.Linear(4, 4))
    assert [m.name for m in find_maskable(torch.compile(model))] == ["0.weight"]
