"""The sparse benchmark's plumbing, on tiny cases (the real run is `safecompress bench sparse`)."""

from __future__ import annotations

import json

import pytest
from sparse_testkit import TinyNet

import safecompress.bench.sparse as bench


def test_benchmark_result_is_json_and_renders(monkeypatch):
    tiny = bench.Case("tiny", TinyNet, bench._images(1, 8, 8), bench._sgd, 8, cpu_steps=2, cuda_steps=2)
    monkeypatch.setattr(bench, "_cases", lambda: [tiny])
    results = bench.run_sparse_benchmark("cpu", repeats=2, quick=True)
    json.dumps(results)
    assert [r["model"] for r in results["throughput"]] == ["tiny"]
    assert {r["growth"] for r in results["updates"]} == {"random", "gradient", "momentum", "unfired"}
    assert [r["density"] for r in results["artifacts"]] == [0.1, 0.05]
    assert all(r["bit_exact_reload"] and r["ratio_to_info_min"] <= 1.1 for r in results["artifacts"])
    text = bench.render_markdown(results)
    assert "| tiny | fp32 | 8 |" in text and "ResNet-18 | 0.05" in text


def test_training_modes_are_timed_with_masks_checked(monkeypatch):
    tiny = bench.Case("tiny", TinyNet, bench._images(1, 8, 8), bench._sgd, 8, cpu_steps=2, cuda_steps=2)
    monkeypatch.setattr(bench, "_cases", lambda: [tiny])
    monkeypatch.setattr(bench, "_update_cost", lambda *a: [])
    monkeypatch.setattr(bench, "_artifact_sizes", lambda: [])
    modes = (bench.TrainingMode(), bench.TrainingMode.parse("bf16"))
    results = bench.run_sparse_benchmark("cpu", repeats=1, quick=True, modes=modes)
    assert results["modes"] == ["fp32", "bf16"]
    assert [(r["mode"], r["masks_exact"]) for r in results["throughput"]] == [("fp32", True), ("bf16", True)]
    assert "| tiny | bf16 | 8 |" in bench.render_markdown(results)


def test_training_mode_names_parse():
    assert bench.TrainingMode.parse("bf16+compile") == bench.TrainingMode("bf16", True)
    assert bench.TrainingMode.parse("compile").name == "fp32+compile"
    with pytest.raises(ValueError, match="unknown training mode"):
        bench.TrainingMode.parse("fp16")
