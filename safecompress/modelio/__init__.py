"""Loading and saving the model under test, safe by default: an untrusted file is never unpickled.

Each file form has its own loader, a ``safecompress_load_model`` hook implementation; plugins add
more. :func:`load_model` asks a plugin manager's hook when given one, otherwise the built-in loaders
in order, so it also works standalone. Forms:

- a SafeCompress sparse artifact (``.safetensors`` whose metadata ``format`` is
  ``safecompress.sparse``), handed to ``safecompress.sparse.load_sparse_artifact``;
- a Hugging Face ``save_pretrained`` folder (``config.json`` plus weights);
- a TorchScript archive (a zip with a ``code/`` folder), only with ``trust_torchscript=True``: its
  program runs on load (``__setstate__``) and on every forward, and TorchScript can write files;
- a state dict in a ``.safetensors`` file or a ``torch.save`` file (read with ``weights_only=True``,
  plain or wrapped in ``{"state_dict": ...}``/``{"model": ...}``), plus an architecture: ``--arch
  torchvision:NAME``, ``--arch package.module:factory`` or a conftest ``model_factory``;
- a pickled module, only with ``trust_pickle=True``: unpickling runs whatever code the file names.

Every failure is a :class:`~safecompress.errors.UsageError` with one line saying what to do. Torch and
transformers are imported inside the functions: registering this plugin costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from safecompress.errors import UsageError
from safecompress.modelio.formats import detect_format, read_safetensors_header
from safecompress.modelio.loaders import (
    BUILTIN_LOADERS,
    load_huggingface,
    load_safetensors,
    load_sparse,
    load_torch_file,
    load_torchscript,
)
from safecompress.modelio.save import SAVE_FORMATS, save_model
from safecompress.modelio.statedicts import build_architecture, find_state_dict, load_state_dict_into

if TYPE_CHECKING:
    import pluggy
    from torch import nn

__all__ = [
    "BUILTIN_LOADERS",
    "SAVE_FORMATS",
    "build_architecture",
    "describe_model",
    "detect_format",
    "find_state_dict",
    "load_huggingface",
    "load_model",
    "load_model_with_plugins",
    "load_safetensors",
    "load_sparse",
    "load_state_dict_into",
    "load_torch_file",
    "load_torchscript",
    "read_safetensors_header",
    "save_model",
]


def load_model(
    path: str | Path,
    *,
    arch: Optional[str] = None,
    num_classes: Optional[int] = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
    trust_torchscript: bool = False,
    factory: Any = None,
    device: Any = "cpu",
    plugin_manager: Optional["pluggy.PluginManager"] = None,
) -> "nn.Module":
    """The model at ``path``, on ``device``, in eval mode; see the module docstring for the forms.

    With ``plugin_manager``, its ``safecompress_load_model`` hook decides (plugins may add forms and
    model factories); without, the built-in loaders and factories are used. A model with NaN or Inf
    weights is refused: no test result about it would mean anything.
    """
    options = {
        "arch": arch,
        "num_classes": num_classes,
        "trust_pickle": trust_pickle,
        "trust_remote_code": trust_remote_code,
        "trust_torchscript": trust_torchscript,
        "factory": factory,
        "device": device,
    }
    return load_model_with_plugins(plugin_manager, path, options)


def load_model_with_plugins(pm: Optional["pluggy.PluginManager"], path: str | Path, options: Mapping[str, Any]) -> "nn.Module":
    """:func:`load_model` with the hook's ``options`` dict as given (plugins may read extra keys)."""
    from safecompress.architectures import ArchitectureError, registered_architectures

    path = Path(path)
    detect_format(path)  # a missing, empty or damaged file fails here, whichever loader would take it
    try:
        architectures = registered_architectures(pm)
    except ArchitectureError as exc:
        raise UsageError(str(exc)) from None
    defaults = {"arch": None, "num_classes": None, "trust_pickle": False, "trust_remote_code": False, "trust_torchscript": False, "factory": None, "device": "cpu"}
    options = {**defaults, **options, "architectures": architectures}
    if pm is not None:
        model = pm.hook.safecompress_load_model(path=path, options=options)
    else:
        model = next((m for m in (loader(path, options) for loader in BUILTIN_LOADERS) if m is not None), None)
    if model is None:
        raise UsageError(f"{path} is not a model file SafeCompress can read (TorchScript, state dict .pt/.safetensors, Hugging Face folder)")
    _refuse_non_finite(model, path)
    return model


def _refuse_non_finite(model: "nn.Module", path: Path) -> None:
    """NaN/Inf weights make every metric meaningless (and can make a gate pass by accident)."""
    import torch

    bad = [(name, int((~torch.isfinite(p)).sum())) for name, p in model.named_parameters() if p.is_floating_point()]
    bad = [(name, count) for name, count in bad if count]
    if bad:
        name, count = bad[0]
        more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
        raise UsageError(f"{path} has non-finite weights ({count} NaN/Inf values in {name!r}{more}): refusing to test a broken model")


def describe_model(model: "nn.Module", maskable: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """What a report says about the model under test: its class, its size and how sparse it is, over
    the maskable weights (``maskable``: the names a sparse artifact masked; default: the default scope)
    and over the whole model."""
    from safecompress.sparse import model_densities

    name = getattr(model, "original_name", None) or type(model).__qualname__  # TorchScript keeps the original
    parameters = list(model.parameters())
    return {
        "class": name,
        "nonzero_parameters": sum(int(p.count_nonzero()) for p in parameters),
        **model_densities(model, maskable),
    }
