"""The built-in loaders, one ``safecompress_load_model`` hook implementation per file form (see
:mod:`safecompress.modelio`); each returns None for files that are not its form."""

from __future__ import annotations

import json
import pickle
import re
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from safecompress.architectures import MAX_RECORDED_INT
from safecompress.errors import UsageError
from safecompress.hookspecs import hookimpl
from safecompress.modelio.formats import detect_format, read_safetensors_header, require_regular_file
from safecompress.modelio.statedicts import ARCH_SYNTAX, STATE_DICT_WRAPPERS, build_architecture, find_state_dict, load_state_dict_into, resolve_architecture
from safecompress.textsafe import one_line, printable

if TYPE_CHECKING:
    import torch
    from torch import nn

HOOK = "safecompress_load_model"


def _architecture_label(options: Mapping[str, Any]) -> str:
    factory = options.get("factory")
    if factory is not None:
        return getattr(factory, "__name__", type(factory).__name__)
    return str(options.get("arch"))


def _model_from_state_dict(state_dict: dict[str, "torch.Tensor"], path: Path, options: Mapping[str, Any]) -> "nn.Module":
    if options.get("arch") is None and options.get("factory") is None:
        raise UsageError(f"{path} holds only weights (a state dict) and no architecture: pass {ARCH_SYNTAX}")
    model = build_architecture(options.get("arch"), options.get("num_classes"), options.get("factory"))
    return load_state_dict_into(model, state_dict, str(path), _architecture_label(options))


def _ready(model: "nn.Module", options: Mapping[str, Any]) -> "nn.Module":
    """On the requested device (``auto`` allowed), in eval mode: the model is about to be audited."""
    from safecompress.inference import resolve_device

    return model.to(resolve_device(options.get("device") or "cpu")).eval()


@hookimpl(specname=HOOK, tryfirst=True)
def load_sparse(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A SafeCompress sparse artifact: the sparse engine knows its layout.

    Without ``arch`` or ``factory`` the artifact's own architecture reference is looked up in the
    ``safecompress_register_models`` registry (``options["architectures"]``), never imported by name:
    a file does not choose code. ``--trust-pickle`` does not change that; ``--arch`` does.
    """
    if detect_format(path) != "sparse":
        return None
    from torch import nn

    from safecompress.sparse import SparseArtifactError, load_sparse_artifact, read_artifact_metadata

    try:
        recorded = read_artifact_metadata(path)
    except SparseArtifactError as exc:
        raise UsageError(one_line(exc)) from None
    num_classes = options.get("num_classes")
    recorded_classes = recorded["arch_kwargs"].get("num_classes")
    if recorded_classes is not None and not (isinstance(recorded_classes, int) and not isinstance(recorded_classes, bool) and 0 < recorded_classes <= MAX_RECORDED_INT):
        raise UsageError(f"{path}: bad artifact metadata (num_classes is {printable(repr(recorded_classes))[:40]}, not a positive whole number)")
    if num_classes is not None and recorded_classes is not None and recorded_classes != num_classes:
        raise UsageError(f"{path} was compressed with num_classes={recorded_classes!r}, but --num-classes {num_classes} was given")
    factory = options.get("factory")
    model_factory: Any = None
    if isinstance(factory, nn.Module):
        model_factory = factory
    elif factory is not None or options.get("arch") is not None:
        model_factory = _user_architecture(path, factory, options.get("arch"), recorded["arch_kwargs"], recorded_classes if num_classes is None else num_classes)
    try:
        model, _ = load_sparse_artifact(path, model_factory=model_factory, architectures=options.get("architectures"))
    except SparseArtifactError as exc:
        raise UsageError(one_line(exc)) from None
    return _ready(model, options)


def _user_architecture(path: Path, factory: Any, arch: Optional[str], recorded: Mapping[str, Any], num_classes: Optional[int]) -> Callable[..., "nn.Module"]:
    """The architecture the user chose, given the artifact's recorded arguments it names, each
    checked (JSON scalars, bounded) before any build: the file's values are untrusted input."""
    from safecompress.architectures import ArchitectureError, accepted_names, check_recorded_kwargs

    chosen, label = (factory, getattr(factory, "__name__", "model_factory")) if factory is not None else resolve_architecture(arch)
    accepted = accepted_names(chosen)
    try:
        checked = check_recorded_kwargs({k: v for k, v in recorded.items() if k in accepted and k != "num_classes"}, accepted, repr(label))
    except ArchitectureError as exc:
        raise UsageError(f"{path}: {exc}") from None

    def rebuild(**_recorded: Any) -> "nn.Module":
        return build_architecture(None, num_classes, chosen, **checked)

    return rebuild


# A config.json is a few KB (a 21k-label id2label map is under 1 MB); json.loads of a huge one takes
# several times its size in memory.
MAX_CONFIG_BYTES = 4 << 20


def _read_hf_config(folder: Path) -> dict[str, Any]:
    require_regular_file(folder / "config.json")
    size = (folder / "config.json").stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise UsageError(f"{folder / 'config.json'} is {size} bytes, over the {MAX_CONFIG_BYTES >> 20} MiB a model configuration can need")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {folder / 'config.json'}: {one_line(exc)}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{folder / 'config.json'} is not a JSON object")
    return config


def _trained_num_labels(config: Mapping[str, Any]) -> Optional[int]:
    """The size of the saved classification head, None when the folder holds a base model."""
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not any(str(name).endswith("ForSequenceClassification") for name in architectures):
        return None
    labels = config.get("id2label")
    return len(labels) if isinstance(labels, dict) else config.get("num_labels")


def _refuse_remote_code(folder: Path, config: Mapping[str, Any]) -> None:
    """``auto_map`` names Python files in the folder that transformers would import (after asking
    on a terminal, or at once with trust_remote_code=True): a model folder must not choose code."""
    custom = sorted(key for key in ("auto_map", "custom_pipelines") if config.get(key))
    scripts = sorted(p.name for p in folder.glob("*.py"))
    if custom:
        detail = f" (config.json has {' and '.join(custom)}" + (f"; code files: {', '.join(scripts[:3])})" if scripts else ")")
        raise UsageError(f"refusing to load {folder}: it asks to run its own Python code{detail}; if you trust its source pass --trust-remote-code (trust_remote_code=True)")


def _require_plain_entries(folder: Path) -> None:
    """Every file transformers may open in the folder must be a regular file (a FIFO would hang it),
    and every safetensors header in it well-formed and bounded."""
    for entry in folder.iterdir():
        if not entry.is_dir() and not stat.S_ISREG(entry.stat().st_mode if entry.exists() else 0):
            raise UsageError(f"{entry} is not a regular file (a FIFO, device, socket or dangling link): refusing the folder {folder}")
        if entry.suffix == ".safetensors" and entry.is_file():
            read_safetensors_header(entry)


@hookimpl(specname=HOOK)
def load_huggingface(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A ``save_pretrained`` folder, as a sequence classifier; never downloads, and runs the folder's
    own code only with ``trust_remote_code``."""
    if detect_format(path) != "huggingface":
        return None
    config = _read_hf_config(path)
    _require_plain_entries(path)
    trust_remote_code = bool(options.get("trust_remote_code"))
    if not trust_remote_code:
        _refuse_remote_code(path, config)
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    num_classes = options.get("num_classes")
    if num_classes is not None:
        trained = _trained_num_labels(config)
        if trained is not None and trained != num_classes:
            raise UsageError(f"the classifier in {path} has {trained} classes, but --num-classes {num_classes} was given")
        kwargs["num_labels"] = num_classes  # a base model (no head yet) gets a fresh head of this size
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    except Exception as exc:  # transformers raises many types (OSError, ValueError, RuntimeError...)
        raise UsageError(f"cannot load the Hugging Face model in {path}: {one_line(exc)}") from None
    return _ready(model, options)


@hookimpl(specname=HOOK)
def load_torchscript(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A TorchScript archive, only with ``trust_torchscript``.

    An archive is a program, not data: ``torch.jit.load`` runs its ``__setstate__`` methods, and its
    ``forward`` may call any op TorchScript knows, ``torch.save``, ``torch.from_file(..., shared=True)``
    and ``torch.load`` included, so a model file could write files while being tested. No allow-list
    of ops is offered: ops reach files through storages, ``torch.ops`` and custom classes too, and
    a proof that misses one would be worse than none. Convert a trusted archive once with
    ``save_model(load_model(p, trust_torchscript=True), "model.safetensors", "safetensors")``.
    """
    if detect_format(path) != "torchscript":
        return None
    if not options.get("trust_torchscript"):
        raise UsageError(
            f"refusing to load {path}: a TorchScript archive is a program (it runs on load and on every forward, and can write files); "
            "if you trust its source pass --trust-torchscript (trust_torchscript=True), otherwise save its state dict as safetensors"
        )
    import torch

    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the user chose the format
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch reports damaged archives as RuntimeError or OSError
        raise UsageError(f"cannot load the TorchScript archive {path}: {one_line(exc)}") from None
    return _ready(model, options)


@hookimpl(specname=HOOK)
def load_safetensors(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A state dict in safetensors: tensors only, nothing to execute."""
    if detect_format(path) != "safetensors":
        return None
    from safetensors.torch import load_file

    try:
        state_dict = load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError and OSError for damaged files
        raise UsageError(f"cannot read the safetensors file {path}: {one_line(exc)}") from None
    if not state_dict:
        raise UsageError(f"{path} holds no tensors")
    return _ready(_model_from_state_dict(state_dict, path, options), options)


def _refuse_pickle(path: Path, detail: str) -> UsageError:
    return UsageError(
        f"refusing to unpickle {path}: it holds pickled Python objects{detail}, and unpickling runs arbitrary code; "
        "if you trust its source pass --trust-pickle (trust_pickle=True), otherwise save it as a state dict, TorchScript or safetensors"
    )


@hookimpl(specname=HOOK, trylast=True)
def load_torch_file(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A ``torch.save`` file or a plain pickle: weights only, unless the user trusts the file."""
    kind = detect_format(path)
    if kind not in ("torch-zip", "torch-legacy", "pickle"):
        return None

    import torch
    from torch import nn

    trusted = bool(options.get("trust_pickle"))
    if kind == "pickle" and not trusted:
        raise _refuse_pickle(path, " (not written by torch.save)")
    try:
        if kind == "pickle":
            with path.open("rb") as stream:
                obj = pickle.load(stream)  # trusted by the user's explicit choice
        else:
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError:
                if not trusted:
                    raise
                # Only here, for a file that is more than tensors, and only with --trust-pickle.
                obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except pickle.UnpicklingError as exc:
        if trusted:
            raise UsageError(f"cannot unpickle {path}: {one_line(exc)}") from None
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise _refuse_pickle(path, f" (it names {named.group(1)})" if named else "") from None
    except Exception as exc:  # damaged archives: RuntimeError, OSError, EOFError...
        raise UsageError(f"cannot read {path}: {one_line(exc)}") from None
    if isinstance(obj, nn.Module):
        return _ready(obj, options)
    state_dict = find_state_dict(obj)
    if state_dict is None:
        what = f"a dict with keys {', '.join(map(repr, list(obj)[:5]))}" if isinstance(obj, Mapping) else type(obj).__name__
        raise UsageError(f"{path} holds {what}, not a model or a state dict (looked for {', '.join(STATE_DICT_WRAPPERS)})")
    return _ready(_model_from_state_dict(state_dict, path, options), options)


BUILTIN_LOADERS: tuple[Callable[[Path, dict[str, Any]], Optional["nn.Module"]], ...] = (
    load_sparse,
    load_huggingface,
    load_torchscript,
    load_safetensors,
    load_torch_file,
)
