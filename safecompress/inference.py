"""Batched, device-agnostic model evaluation shared by attacks, tests and the driver."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from safecompress.data.splits import Split


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; an explicit ``cuda`` without a GPU is a usage error."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from safecompress.errors import UsageError

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {name!r}: use auto, cpu or cuda (cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} was asked for, but no CUDA device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {name!r}: use auto, cpu or cuda (cuda:N)")
    return device


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode with its parameters' ``requires_grad`` off, restored on exit: for
    differentiating w.r.t. inputs (adversarial examples, inversions) without touching the model's
    own gradients or batch-norm statistics, even in the middle of a training step."""
    was_training = model.training
    requires = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), requires):
            p.requires_grad_(flag)
        model.train(was_training)


def model_logits(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Logits from a plain module (tensor in) or a transformers model (dict in, ``.logits`` out)."""
    out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, (tuple, list)):
        logits = out[0]
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"model returned {type(out).__name__}; expected a tensor of logits or an object with .logits")
    return logits


# Rows per inference batch. On a CPU a smaller batch keeps the activations in cache: the SmallCNN
# scores 1.6-1.7x the rows per second at 128 than at 512, with 1 or 2 threads, and bit-identical
# logits (docs/benchmark.md, "Cost levers"). On an accelerator a large batch fills the device.
CPU_INFERENCE_BATCH = 128
ACCELERATOR_INFERENCE_BATCH = 512


def inference_batch_size(device: torch.device | str) -> int:
    """The default rows per inference batch on ``device``."""
    return CPU_INFERENCE_BATCH if torch.device(device).type == "cpu" else ACCELERATOR_INFERENCE_BATCH


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, device: torch.device | str | None = None, batch_size: int | None = None) -> torch.Tensor:
    """Logits for every row of ``split`` in order, as float32 on the CPU; the model is left in eval mode.
    ``batch_size`` defaults to :func:`inference_batch_size` of the device."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    batch_size = batch_size or inference_batch_size(device)
    model.eval()
    chunks = [model_logits(model, x).float().cpu() for x, _ in split.batches(batch_size, device)]
    if not chunks:
        return torch.empty(0)
    return torch.cat(chunks)


def accuracy(model: nn.Module, split: Split, device: torch.device | str | None = None, batch_size: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``split``."""
    logits = predict_logits(model, split, device, batch_size)
    return float((logits.argmax(1) == split.labels.cpu()).float().mean()) if len(split) else float("nan")
