"""`safecompress bench heterogeneous`: BMIA / WMIA / MMIA remedies against plain DST, on a tiny task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from safecompress.bench import heterogeneous
from safecompress.bench import plan as bench_plan
from safecompress.driver.steering import Steering
from safecompress.remedies import BUILTIN_REMEDIES, RemedyContext

ROOT = Path(__file__).resolve().parents[2]


def test_fixed_remedies_take_their_options():
    from safecompress.data import fashion_mnist_embedded

    data = fashion_mnist_embedded(members=50, non_members=50, population=100, test=50, seed=0)
    steering = Steering(dict(BUILTIN_REMEDIES), lambda options: RemedyContext(num_classes=10, device=torch.device("cpu"), reference=data.population, options=options))
    steering.fix({"adversarial_regularization": 0.8}, {"adversarial_regularization": {"attacker": "both"}})
    assert steering.remedy("adversarial_regularization").kind == "both" and steering.weights() == {"adversarial_regularization": 0.8}


@pytest.mark.slow
def test_tiny_heterogeneous_benchmark_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFECOMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    task = bench_plan.TaskSpec(
        name="fashion-mnist",
        data="fashion-mnist-embedded",
        data_options={"members": 64, "non_members": 64, "population": 128, "test": 64},
        recipe={"epochs": 6, "batch_size": 32, "lr": 1e-3, "optimizer": "adam"},
        model="small_cnn",
        model_options={"width": 4},
        densities=(0.1,),
    )
    saved: list[int] = []
    lines: list[str] = []
    results = heterogeneous.run_heterogeneous_benchmark([3], task=task, refs=2, rootdir=ROOT, log=lines.append, checkpoint=lambda r: saved.append(len(r["records"])))
    assert [r["arm"] for r in results["records"]] == ["dense", "plain-dst", "bmia", "wmia", "mmia"] and saved == [1, 2, 3, 4, 5]
    assert [r["attacker"] for r in results["records"][1:]] == [None, "black", "white", "both"]
    for record in results["records"]:
        for name in ("nasr", "nasr_whitebox"):
            auc = record["learned"][name]["auc"]
            assert 0.0 <= auc["low"] <= auc["value"] <= auc["high"] <= 1.0
    assert [row["arm"] for row in results["summary"]] == ["dense", "plain-dst", "bmia", "wmia", "mmia"] and results["summary"][0]["seeds"] == [3]
    markdown = heterogeneous.render_markdown(results)
    assert "both attackers (MMIA)" in markdown and "Nasr white-box AUC" in markdown and markdown.count("\n| ") == 5  # one row per arm
    assert len(lines) == 4 and all(line.startswith("seed 3: ") for line in lines)


def _record(seed: int, arm: str, rmia: float) -> dict:
    auc = {"auc": {"value": rmia, "low": rmia - 0.03, "high": rmia + 0.03}}
    return {
        "seed": seed,
        "arm": arm,
        "seconds": 10.0,
        "test_accuracy": {"value": 0.8, "low": 0.78, "high": 0.82},
        "attacks": {"rmia": {**auc, "tpr_at_1pct_fpr": {"value": 0.05}}, "lira": auc},
        "learned": {"nasr": auc, "nasr_whitebox": auc},
    }


def test_merged_runs_pool_their_seeds_and_refuse_overlaps():
    from safecompress.errors import UsageError

    def run(seed: int, rmia: float) -> dict:
        records = [_record(seed, arm, rmia) for arm in ("dense", "plain-dst", "bmia")]
        return {"benchmark": "heterogeneous", "weight": 0.8, "refs": 4, "quick": False, "records": records, "summary": heterogeneous.summarize(records)}

    merged = heterogeneous.merge_results([run(1, 0.6), run(2, 0.7)])
    bmia = next(row for row in merged["summary"] if row["arm"] == "bmia")
    assert bmia["seeds"] == [1, 2] and bmia["rmia"]["mean"] == pytest.approx(0.65) and bmia["rmia"]["se"] == pytest.approx(0.05)
    with pytest.raises(UsageError, match="seeds overlap"):
        heterogeneous.merge_results([run(1, 0.6), run(1, 0.7)])
    with pytest.raises(UsageError, match="differ in weight"):
        heterogeneous.merge_results([run(1, 0.6), {**run(2, 0.7), "weight": 0.4}])
