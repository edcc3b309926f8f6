"""Growth rules are a registry: the built-ins and plugins' rules are looked up the same way."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from safecompress.models import small_cnn
from safecompress.sparse import BUILTIN_GROWTH, GrowthRule, GrowthSpec, SparseEngine

sys.path.insert(0, str(Path(__file__).parent.parent / "driver"))
from compress_project import QUICK, gate_verdict, make_compress_project, run_in  # noqa: E402


def lowest_index_first(inputs) -> torch.Tensor:
    """Score positions by minus their flat index: the first inactive positions grow."""
    return -torch.arange(inputs.weight.numel(), dtype=torch.float32).view(inputs.weight.shape)


def test_a_registered_rule_decides_where_weights_regrow():
    torch.manual_seed(0)
    engine = SparseEngine(small_cnn(), None, 0.1, growth_rules={"first": GrowthRule(lowest_index_first)})
    before = {name: mask.clone() for name, mask in engine.masks.items()}
    candidate = engine.propose([GrowthSpec("first", prune_fraction=0.3)])[0]
    for name, new in candidate.masks.items():
        grown = (new & ~before[name]).flatten().nonzero().squeeze(1)
        inactive = (~before[name]).flatten().nonzero().squeeze(1)
        assert torch.equal(grown, inactive[: grown.numel()])


def test_unknown_rules_are_refused_and_the_builtins_are_registered():
    assert set(BUILTIN_GROWTH) == {"random", "gradient", "momentum", "unfired"}
    with pytest.raises(ValueError, match="unknown growth 'nope'"):
        SparseEngine(small_cnn(), None, 0.1, growth="nope")
    engine = SparseEngine(small_cnn(), None, 0.1)
    with pytest.raises(ValueError, match="unknown growth 'nope'"):
        engine.propose([GrowthSpec("nope")])


PLUGIN_RULE = """


def safecompress_register_growth_rules(register):
    import torch
    from safecompress.sparse import GrowthRule

    register("first", GrowthRule(lambda g: -torch.arange(g.weight.numel(), dtype=torch.float32).view(g.weight.shape)))
"""


@pytest.mark.slow
def test_a_conftest_rule_drives_compression(tmp_path, capsys):
    make_compress_project(tmp_path)
    with (tmp_path / "conftest.py").open("a") as handle:
        handle.write(PLUGIN_RULE)
    pyproject = (tmp_path / "pyproject.toml").read_text().replace("[tool.safecompress.compress]\n", '[tool.safecompress.compress]\nstrategies = ["first", "random:0"]\n')
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert run_in(tmp_path, "compress", "parent.pt", "--out", "out", *QUICK) == gate_verdict(tmp_path / "out")
    decisions = [line for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines() if '"kind": "update"' in line]
    assert decisions and all('"name": "first' in line for line in decisions)
    pyproject = pyproject.replace('strategies = ["first", "random:0"]', 'strategies = ["nope"]')
    (tmp_path / "pyproject.toml").write_text(pyproject)
    capsys.readouterr()
    assert run_in(tmp_path, "compress", "parent.pt", "--out", "out2", *QUICK) == 4
    assert "unknown candidate strategy 'nope': the growth rule is one of first, gradient, momentum, random, unfired" in capsys.readouterr().out
