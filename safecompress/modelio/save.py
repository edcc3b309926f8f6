"""Saving a model so that :func:`~safecompress.modelio.load_model` reads it back bit-exact without
trusting a pickle; every write is atomic."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safecompress.errors import UsageError
from safecompress.fsutil import atomic_folder, atomic_path
from safecompress.textsafe import one_line

if TYPE_CHECKING:
    import torch
    from torch import nn

SAVE_FORMATS = ("state_dict", "torchscript", "safetensors", "hf")


def save_model(model: "nn.Module", path: str | Path, format: str = "state_dict", *, example_inputs: Any = None) -> Path:
    """Write ``model`` so that :func:`load_model` reads it back bit-exact without trusting a pickle.

    ``state_dict`` and ``safetensors`` need the architecture again at load time (``--arch``);
    ``torchscript`` carries its code (scripted, or traced on ``example_inputs`` when scripting fails);
    ``hf`` is a ``save_pretrained`` folder for transformers models.
    """
    import torch

    if format not in SAVE_FORMATS:
        raise UsageError(f"unknown model format {format!r}; choose one of {', '.join(SAVE_FORMATS)}")
    path = Path(path)
    if format == "hf":
        if not hasattr(model, "save_pretrained"):
            raise UsageError(f"format 'hf' needs a transformers model (with save_pretrained), not {type(model).__name__}")
        with atomic_folder(path) as staging:
            model.save_pretrained(str(staging))
        return path
    scripted = _script(model, example_inputs) if format == "torchscript" else None
    with atomic_path(path) as tmp:  # the previous file stays whole until the new one is complete
        if format == "state_dict":
            torch.save(model.state_dict(), tmp)
        elif format == "safetensors":
            from safetensors.torch import save_model as save_safetensors

            save_safetensors(model, str(tmp), metadata={"format": "pt"})
        else:
            scripted.save(str(tmp))  # type: ignore[union-attr]
    return path


def _script(model: "nn.Module", example_inputs: Any) -> "torch.jit.ScriptModule":
    """TorchScript for ``model``: scripting keeps control flow; tracing is the fallback."""
    import torch

    if isinstance(model, torch.jit.ScriptModule):
        return model
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the caller chose the format
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.script(model)
    except Exception as exc:  # scripting rejects many Python constructs
        if example_inputs is None:
            raise UsageError(f"cannot script {type(model).__name__} ({one_line(exc)}); pass example_inputs to trace it instead") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.trace(model, example_inputs)
    except Exception as exc:  # tracing runs the user's forward
        raise UsageError(f"cannot trace {type(model).__name__}: {one_line(exc)}") from None
