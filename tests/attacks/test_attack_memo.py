"""Attack work on an unchanged model is done once per session (issue 14, cost): a suite that attacks
``dense_model`` inside the test body, as users write it, queries the parent and trains its references
once for the whole compression run, not once per candidate; a changed weight is new work."""

from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import pytest
import torch

from safecompress.attacks import make_attack_inputs, wrappers
from safecompress.attacks.memo import AttackMemo, model_fingerprint
from tests.attacks.test_session_recipe import CONFTEST

USER_SUITE = """
import safecompress
from safecompress.attacks import make_attack_inputs, rmia_attack, run_attack


@safecompress.mark.cost("cheap")
def test_no_more_leaky_than_the_parent(model, dense_model, data, record):
    parent = run_attack("rmia", dense_model, data, refs=1, seed=0)  # recomputed by every candidate, as users write it
    mine = rmia_attack(make_attack_inputs(model, data, refs=1, seed=0))
    record.metric("parent_rmia_auc", parent.auc.value)
    record.at_most("rmia_auc", mine.auc.value, 1.0)
"""


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often real attack inputs were computed, per model fingerprint (the real function runs)."""
    calls: Counter = Counter()
    real = wrappers._attack_inputs

    def counting(model, *args, **kwargs):
        calls[model_fingerprint(model)] += 1
        return real(model, *args, **kwargs)

    monkeypatch.setattr(wrappers, "_attack_inputs", counting)
    return calls


def test_the_parent_is_attacked_once_in_a_whole_compression_run(project, counted: Counter, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    project.write("conftest.py", CONFTEST)
    project.write("safety_tests/test_user.py", USER_SUITE)
    code = project.run("compress", "model.pt", "--out", "out", "--density", "0.5", "--updates", "2", "--candidates", "2", "--epochs", "8", "--attempts", "1", "-q")
    assert code in (0, 1)
    report = json.loads((project.root / "out" / "report.json").read_text())
    judged = 1 + sum(len(u["candidates"]) + 1 for u in report["updates"]) + len(report["final_checks"])  # baseline, candidates, checkpoints
    parent = torch.nn.Linear(4, 2)
    parent.load_state_dict(torch.load(project.root / "model.pt", weights_only=True))
    assert judged >= 6
    assert counted[model_fingerprint(parent)] == 1  # computed once, then served from the session's memo
    assert sum(counted.values()) < 2 * judged  # every other model's own inputs are still computed


def tiny_splits():
    from safecompress.data.splits import DataSplits, Split

    generator = torch.Generator().manual_seed(0)

    def part(start: int, name: str) -> Split:
        return Split(torch.randn(20, 4, generator=generator), torch.randint(0, 2, (20,), generator=generator), np.arange(start, start + 20), name)

    return DataSplits(part(0, "members"), part(20, "non_members"), part(40, "population"), part(60, "test"), num_classes=2)


def test_outside_a_session_nothing_is_memoised(counted: Counter) -> None:
    model, splits = torch.nn.Linear(4, 2), tiny_splits()
    make_attack_inputs(model, splits)
    make_attack_inputs(model, splits)
    assert sum(counted.values()) == 2


def test_the_fingerprint_sees_every_weight_and_buffer() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    same = copy.deepcopy(model)
    assert model_fingerprint(model) == model_fingerprint(same)
    with torch.no_grad():
        same[0].weight[1, 2] += 1e-7
    assert model_fingerprint(model) != model_fingerprint(same)
    other = copy.deepcopy(model)
    other[1].running_mean += 1.0  # a buffer changes the outputs in eval mode
    assert model_fingerprint(model) != model_fingerprint(other)


def test_the_memo_hands_out_copies_and_forgets_the_least_recently_used() -> None:
    memo = AttackMemo(entries=2)
    memo.put("a", {"auc": [0.6]})
    got = memo.get("a")
    got["auc"].append(0.9)  # one test editing its result cannot change another test's
    assert memo.get("a") == {"auc": [0.6]}
    memo.put("b", 1)
    memo.get("a")
    memo.put("c", 2)
    assert memo.get("b") is None and memo.get("a") is not None and memo.get("c") == 2
    assert (memo.hits, memo.misses) == (5, 1)


def test_the_memo_keeps_within_its_byte_budget() -> None:
    memo = AttackMemo(entries=8, budget_bytes=1000)
    memo.put("big", np.zeros(200))  # 1,600 bytes: larger than the whole budget, not kept
    memo.put("a", np.zeros(100))
    memo.put("b", np.zeros(50))
    assert memo.get("big") is None and memo.get("b") is not None
    memo.put("c", np.zeros(60))  # 800 + 400 + 480 > 1,000: the least recently used goes
    assert memo.get("a") is None and memo.get("b") is not None and memo.get("c") is not None
