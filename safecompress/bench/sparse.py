"""``safecompress bench sparse``: what sparse training costs, and what the artifact saves.

Three measurements, each the median of ``repeats`` runs in one process:

- training throughput, dense vs masked (d = 0.1, ERK, the engine attached with a schedule whose
  updates fall outside the timed steps), same batches, runs interleaved so load drift hits both:
  a small CNN on 28×28, torchvision ResNet-18 on 32×32, a 2-layer h=128 BERT on 32 tokens; once per
  training mode (fp32, bf16 autocast, ``torch.compile``, both), each masked run checked to end with
  its pruned weights exactly zero;
- the cost of one topology update per growth rule (propose + apply at p = 0.5, the worst case),
  in milliseconds and in training steps;
- ResNet-18 artifact sizes at d = 0.1 and 0.05 against the information minimum and the dense file.

The result is plain JSON-able data; :func:`render_markdown` turns it into README tables.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from safecompress.inference import model_logits, resolve_device
from safecompress.sparse import (
    GROWTH_RULES,
    GrowthSpec,
    PruneSchedule,
    SparseEngine,
    export_state_dict,
    load_sparse_artifact,
    save_sparse_artifact,
)

DENSITY = 0.1
ARTIFACT_DENSITIES = (0.1, 0.05)


@dataclass(frozen=True)
class TrainingMode:
    """How the timed steps run: the compress loop's ``--precision`` and ``--compile``."""

    precision: str = "fp32"
    compile: bool = False

    @property
    def name(self) -> str:
        return "+".join([self.precision] + (["compile"] if self.compile else []))

    @classmethod
    def parse(cls, text: str) -> "TrainingMode":
        """``fp32``, ``bf16``, ``compile`` (fp32 compiled) or ``bf16+compile``."""
        parts = set(text.strip().lower().split("+"))
        compiled = "compile" in parts
        parts.discard("compile")
        if len(parts) > 1 or not parts <= {"fp32", "bf16"}:
            raise ValueError(f"unknown training mode {text!r}: use fp32, bf16, compile or bf16+compile")
        return cls(precision=next(iter(parts), "fp32"), compile=compiled)


@dataclass(frozen=True)
class Case:
    """A model, its batches and optimizer, and how many steps one timed run takes on CPU / CUDA."""

    name: str
    build: Callable[[], nn.Module]
    batch: Callable[[torch.Generator, torch.device], tuple[Any, torch.Tensor]]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    batch_size: int
    cpu_steps: int
    cuda_steps: int


def _images(channels: int, side: int, n: int) -> Callable[[torch.Generator, torch.device], tuple[Any, torch.Tensor]]:
    def make(g: torch.Generator, device: torch.device) -> tuple[Any, torch.Tensor]:
        return torch.randn(n, channels, side, side, generator=g).to(device), torch.randint(0, 10, (n,), generator=g).to(device)

    return make


def _tokens(n: int, length: int = 32, vocab: int = 30522) -> Callable[[torch.Generator, torch.device], tuple[Any, torch.Tensor]]:
    def make(g: torch.Generator, device: torch.device) -> tuple[Any, torch.Tensor]:
        ids = torch.randint(0, vocab, (n, length), generator=g).to(device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.randint(0, 2, (n,), generator=g).to(device)

    return make


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def _adamw(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)


def _cases() -> list[Case]:
    from safecompress.models import resnet18_small_input, small_cnn, tiny_bert

    return [
        Case("SmallCNN 28×28", small_cnn, _images(1, 28, 128), _sgd, 128, cpu_steps=10, cuda_steps=100),
        Case("ResNet-18 32×32", resnet18_small_input, _images(3, 32, 32), _sgd, 32, cpu_steps=3, cuda_steps=50),
        Case("tiny BERT (2×128, seq 32)", lambda: tiny_bert(num_classes=2), _tokens(32), _adamw, 32, cpu_steps=8, cuda_steps=100),
    ]


def run_sparse_benchmark(device: str = "auto", repeats: int = 5, quick: bool = False, modes: Optional[tuple[TrainingMode, ...]] = None) -> dict:
    """Measure throughput (per training mode), topology-update cost and artifact size; returns
    JSON-able data.

    ``quick`` shortens every run and times updates on the small CNN only (about a minute on 2 CPU
    cores in fp32; the full CPU run takes a few minutes). ``modes`` defaults to fp32 alone.
    """
    modes = modes or (TrainingMode(),)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    dev = resolve_device(device)
    repeats = max(1, repeats)
    cases = _cases()
    started = time.perf_counter()
    throughput = [_throughput(case, dev, repeats, quick, mode) for mode in modes for case in cases]
    update_cases = cases[:1] if quick else cases
    updates = [row for case in update_cases for row in _update_cost(case, dev, repeats)]
    artifacts = _artifact_sizes()
    return {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "repeats": repeats,
        "quick": quick,
        "density": DENSITY,
        "modes": [mode.name for mode in modes],
        "throughput": throughput,
        "updates": updates,
        "artifacts": artifacts,
        "seconds": time.perf_counter() - started,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, engine: SparseEngine | None, batches: list, autocast: Callable[[], Any] = contextlib.nullcontext) -> None:
    for inputs, labels in batches:
        with autocast():
            loss = nn.functional.cross_entropy(model_logits(model, inputs).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if engine is not None:
            engine.step()


def _timed(device: torch.device, fn: Callable[[], None]) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _setup(case: Case, device: torch.device, sparse: bool, **engine_kwargs: Any) -> tuple[nn.Module, torch.optim.Optimizer, SparseEngine | None]:
    torch.manual_seed(0)
    model = case.build().to(device).train()
    optimizer = case.optimizer(model)
    engine = SparseEngine(model, optimizer, DENSITY, **engine_kwargs) if sparse else None
    return model, optimizer, engine


def _throughput(case: Case, device: torch.device, repeats: int, quick: bool, mode: TrainingMode) -> dict:
    from safecompress.driver.loop import training_autocast

    steps = case.cuda_steps if device.type == "cuda" else case.cpu_steps
    steps = max(2, steps // 2) if quick else steps
    g = torch.Generator().manual_seed(0)
    batches = [case.batch(g, device) for _ in range(steps)]
    # Updates every 10⁵ steps: the per-step hook does its full bookkeeping, no update is timed.
    schedule = PruneSchedule(10**7, update_interval=10**5)
    runs = {
        False: _setup(case, device, sparse=False),
        True: _setup(case, device, sparse=True, growth="gradient", schedule=schedule),
    }
    autocast = training_autocast(mode.precision, device)
    trainers = {sparse: torch.compile(model) if mode.compile else model for sparse, (model, _, _) in runs.items()}
    warmup_s: dict[bool, float] = {}
    for sparse, (_, optimizer, engine) in runs.items():  # warm-up: allocator, lazy state, kernels, compilation
        warmup_s[sparse] = _timed(device, lambda: _train(trainers[sparse], optimizer, engine, batches[:2], autocast))
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        for sparse in (False, True) if r % 2 == 0 else (True, False):
            _, optimizer, engine = runs[sparse]
            times[sparse].append(_timed(device, lambda: _train(trainers[sparse], optimizer, engine, batches, autocast)))
    samples = steps * case.batch_size
    dense, masked = statistics.median(times[False]), statistics.median(times[True])
    paired = statistics.median(d / s for d, s in zip(times[False], times[True]))
    sparse_engine = runs[True][2]
    assert sparse_engine is not None
    masks_exact = all(bool((p.detach()[~m] == 0).all()) for p, m in zip(sparse_engine.params, sparse_engine.masks.values()))
    return {
        "model": case.name,
        "mode": mode.name,
        "masks_exact": masks_exact,
        "warmup_s": max(warmup_s.values()),
        "batch_size": case.batch_size,
        "steps": steps,
        "dense_samples_per_s": samples / dense,
        "sparse_samples_per_s": samples / masked,
        "ratio": paired,
    }


def _update_cost(case: Case, device: torch.device, repeats: int) -> list[dict]:
    # Every step is an update step so the hook keeps a fresh dense gradient and momentum signal.
    schedule = PruneSchedule(10**7, update_interval=1, stop_fraction=0.0, p0=0.5, p_min=0.5)
    model, optimizer, engine = _setup(case, device, sparse=True, schedule=schedule, auto_update=False, extra_growth=GROWTH_RULES, momentum_window=1)
    assert engine is not None
    g = torch.Generator().manual_seed(1)
    batch = [case.batch(g, device)]
    _train(model, optimizer, engine, batch)
    step_times: list[float] = []
    costs: dict[str, list[float]] = {rule: [] for rule in GROWTH_RULES}
    for _ in range(repeats):
        for rule in GROWTH_RULES:
            step_times.append(_timed(device, lambda: _train(model, optimizer, engine, batch)))
            costs[rule].append(_timed(device, lambda: engine.update(GrowthSpec(rule))))
    step = statistics.median(step_times)
    maskable = sum(p.numel() for p in engine.params)
    return [
        {
            "model": case.name,
            "growth": rule,
            "maskable_weights": maskable,
            "update_ms": 1e3 * statistics.median(costs[rule]),
            "train_step_ms": 1e3 * step,
            "update_in_steps": statistics.median(costs[rule]) / step,
        }
        for rule in GROWTH_RULES
    ]


def _artifact_sizes() -> list[dict]:
    from safecompress.models import resnet18_small_input

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dense_path = export_state_dict(resnet18_small_input(), Path(tmp) / "dense.safetensors")
        dense_bytes = os.path.getsize(dense_path)
        for density in ARTIFACT_DENSITIES:
            torch.manual_seed(0)
            model = resnet18_small_input()
            engine = SparseEngine(model, None, density)
            info = save_sparse_artifact(model, Path(tmp) / f"sparse-{density}.safetensors", engine.masks, arch="safecompress.models:resnet18_small_input")
            loaded, _ = load_sparse_artifact(info.path)
            exact = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
            rows.append(
                {
                    "model": "ResNet-18",
                    "density": density,
                    "file_bytes": info.file_bytes,
                    "info_min_bytes": info.info_min_bytes,
                    "dense_file_bytes": dense_bytes,
                    "ratio_to_info_min": info.ratio_to_info_min,
                    "ratio_to_dense_file": info.file_bytes / dense_bytes,
                    "bit_exact_reload": exact,
                }
            )
    return rows


def render_markdown(results: dict) -> str:
    """README-ready tables for a :func:`run_sparse_benchmark` result."""
    lines = [
        f"Sparse engine benchmark on {results['device']} ({results['device_name']}, {results['threads']} threads), "
        f"torch {results['torch']}, median of {results['repeats']} runs{', quick' if results['quick'] else ''}.",
        "",
        f"### Training throughput, dense vs masked (d = {results['density']}, ERK)",
        "",
        "| model | mode | batch | dense samples/s | masked samples/s | masked / dense | pruned weights exactly 0 |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["throughput"]:
        lines.append(
            f"| {row['model']} | {row['mode']} | {row['batch_size']} | {row['dense_samples_per_s']:.1f} | {row['sparse_samples_per_s']:.1f} | "
            f"{row['ratio']:.3f} | {'yes' if row['masks_exact'] else 'NO'} |"
        )
    lines += [
        "",
        "### One topology update (propose + apply, p = 0.5)",
        "",
        "| model | maskable weights | growth | update ms | in training steps |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for row in results["updates"]:
        lines.append(f"| {row['model']} | {row['maskable_weights']:,} | {row['growth']} | {row['update_ms']:.1f} | {row['update_in_steps']:.2f} |")
    lines += [
        "",
        "### Sparse artifact size",
        "",
        "| model | density | file bytes | info minimum | file / minimum | dense file bytes | file / dense | bit-exact reload |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["artifacts"]:
        lines.append(
            f"| {row['model']} | {row['density']} | {row['file_bytes']:,} | {row['info_min_bytes']:,} | "
            f"{row['ratio_to_info_min']:.4f} | {row['dense_file_bytes']:,} | {row['ratio_to_dense_file']:.4f} | "
            f"{'yes' if row['bit_exact_reload'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"
