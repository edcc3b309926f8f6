"""The engine on a CUDA device: fused optimizers, fp16/bf16 autocast with GradScaler, inductor, resume."""

from __future__ import annotations

import pytest
import torch
from sparse_testkit import TinyNet, assert_masked, batch
from torch import nn

from safecompress.sparse import (
    GROWTH_RULES,
    GrowthSpec,
    PruneSchedule,
    SparseEngine,
    load_sparse_artifact,
    save_sparse_artifact,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = torch.device("cuda")

OPTIMIZERS = {
    "sgd-nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam-fused": lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
    "adamw-foreach": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.05, foreach=True),
}


def cuda_setup(growth: str, optimizer: str, **kwargs):
    torch.manual_seed(0)
    model = TinyNet().to(CUDA)
    opt = OPTIMIZERS[optimizer](model.parameters())
    engine = SparseEngine(model, opt, 0.1, growth=growth, schedule=PruneSchedule(20, update_interval=4), **kwargs)
    return model, opt, engine


def cuda_step(model, opt, engine, step: int, dtype: torch.dtype | None = None, scaler=None) -> None:
    x, y = (t.to(CUDA) for t in batch(step))
    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    engine.step()


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("growth", GROWTH_RULES)
def test_invariants_on_cuda(growth, optimizer):
    model, opt, engine = cuda_setup(growth, optimizer)
    nnz = [r.nnz for r in engine.layer_table()]
    for step in range(20):
        cuda_step(model, opt, engine, step)
        assert_masked(engine, opt)
        assert [int(m.sum()) for m in engine.masks.values()] == nnz
    assert engine.num_updates == 4 and all(m.device.type == "cuda" for m in engine.masks.values())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_with_grad_scaler(dtype):
    model, opt, engine = cuda_setup("gradient", "adam-fused")
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    for step in range(20):
        cuda_step(model, opt, engine, step, dtype=dtype, scaler=scaler)
        assert_masked(engine, opt)
    assert engine.num_updates == 4


def test_inductor_compiled_model_does_not_recompile_across_updates():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model, opt, engine = cuda_setup("gradient", "adamw-foreach")
    compiled = torch.compile(model)
    for step in range(20):
        x, y = (t.to(CUDA) for t in batch(step))
        loss = nn.functional.cross_entropy(compiled(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        engine.step()
        assert_masked(engine, opt)
    assert engine.num_updates == 4 and counters["stats"]["unique_graphs"] == 1


def test_candidates_snapshot_and_artifact_on_cuda(tmp_path):
    model, opt, engine = cuda_setup("random", "sgd-nesterov", auto_update=False, extra_growth=("gradient", "momentum"))
    for step in range(4):
        cuda_step(model, opt, engine, step)
    candidates = engine.propose([GrowthSpec(g) for g in GROWTH_RULES])
    snap = engine.snapshot(device="cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for c in candidates:
        engine.apply(c)
        cuda_step(model, opt, engine, 4)
        assert_masked(engine, opt)
        engine.restore(snap)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    engine.apply(candidates[1])
    path = tmp_path / "cuda.safetensors"
    save_sparse_artifact(model, path, engine.masks)
    loaded, _ = load_sparse_artifact(path, TinyNet())
    assert all(torch.equal(v.cpu(), loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_resume_on_cuda_is_bit_identical(tmp_path):
    def fresh():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(CUDA)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        engine = SparseEngine(model, opt, 0.1, growth="momentum", schedule=PruneSchedule(24, update_interval=4), momentum_window=3)
        return model, opt, engine

    def run(model, opt, engine, start, stop):
        for step in range(start, stop):
            g = torch.Generator().manual_seed(step)
            x, y = torch.randn(32, 64, generator=g).to(CUDA), torch.randint(0, 10, (32,), generator=g).to(CUDA)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            engine.step()

    straight = fresh()
    run(*straight, 0, 22)
    first = fresh()
    run(*first, 0, 11)
    torch.save({"m": first[0].state_dict(), "o": first[1].state_dict(), "e": first[2].state_dict()}, tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = fresh()
    resumed[0].load_state_dict(ckpt["m"])
    resumed[1].load_state_dict(ckpt["o"])
    resumed[2].load_state_dict(ckpt["e"])
    run(*resumed, 11, 22)
    for (k, a), b in zip(straight[0].state_dict().items(), resumed[0].state_dict().values()):
        assert torch.equal(a, b), k
    assert all(torch.equal(straight[2].masks[n], resumed[2].masks[n]) for n in straight[2].names)
