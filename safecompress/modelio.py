"""Loading and saving the model under test, safe by default: an untrusted file is never unpickled.

Each file form has its own loader, a ``safecompress_load_model`` hook implementation; plugins add
more. :func:`load_model` asks a plugin manager's hook when given one, otherwise the built-in loaders
in order, so it also works standalone. Forms:

- a SafeCompress sparse artifact (``.safetensors`` whose metadata ``format`` is
  ``safecompress.sparse``), handed to ``safecompress.sparse.load_sparse_artifact``;
- a Hugging Face ``save_pretrained`` folder (``config.json`` plus weights);
- a TorchScript archive (a zip with a ``code/`` folder);
- a state dict in a ``.safetensors`` file or a ``torch.save`` file (read with ``weights_only=True``,
  plain or wrapped in ``{"state_dict": ...}``/``{"model": ...}``), plus an architecture: ``--arch
  torchvision:NAME``, ``--arch package.module:factory`` or a conftest ``model_factory``;
- a pickled module, only with ``trust_pickle=True``: unpickling runs whatever code the file names.

Every failure is a :class:`~safecompress.errors.UsageError` with one line saying what to do. Torch and
transformers are imported inside the functions: registering this plugin costs nothing.
"""

from __future__ import annotations

import inspect
import json
import re
import stat
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from safecompress.errors import UsageError
from safecompress.fsutil import atomic_folder, atomic_path
from safecompress.hookspecs import hookimpl
from safecompress.importing import import_callable

if TYPE_CHECKING:
    import pluggy
    import torch
    from torch import nn

HOOK = "safecompress_load_model"
# Metadata ``format`` of a sparse artifact: the name in the spec, and the one safecompress.sparse writes.
SPARSE_FORMATS = ("safecompress.sparse",)
SAVE_FORMATS = ("state_dict", "torchscript", "safetensors", "hf")
STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")
# Prefixes that wrappers add to every key: DataParallel/DistributedDataParallel, torch.compile.
KEY_PREFIXES = ("module.", "_orig_mod.")
# torch.save's legacy (pre-zip) format starts with its magic number, pickled with protocol 2.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
ARCH_SYNTAX = "--arch torchvision:resnet18 --num-classes 10, or --arch package.module:factory"


def _one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message: errors end in one line, not a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# --- recognising a file ------------------------------------------------------------------------
def read_safetensors_header(path: Path) -> Optional[dict[str, Any]]:
    """The JSON header of a ``.safetensors`` file, None when the file is not one.

    The format is an 8-byte little-endian header length, the JSON header, then the tensor bytes; a file
    whose header or data is cut short is reported as truncated.
    """
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(9)
        if len(prefix) < 9 or prefix[8:9] != b"{":
            return None
        length = int.from_bytes(prefix[:8], "little")
        if 8 + length > size:
            raise UsageError(f"{path} is a truncated safetensors file (its header runs past the end of the file)")
        stream.seek(8)
        raw = stream.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UsageError(f"{path} is a corrupt safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise UsageError(f"{path} is a corrupt safetensors file (its header is not a JSON object)")
    problem = _header_problem(header)
    if problem:
        raise UsageError(f"{path} is a corrupt safetensors file ({problem})")
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        raise UsageError(f"{path} is a truncated safetensors file (its tensors run past the end of the file)")
    return header


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _header_problem(header: Mapping[str, Any]) -> str:
    """What is malformed in a safetensors header ("" when nothing), checked before any field is used."""
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        return "its __metadata__ is not an object of strings"
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
            return f"tensor {key!r} has no dtype"
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(_is_count(n) for n in shape)):
            return f"tensor {key!r} has a malformed shape"
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets) and offsets[0] <= offsets[1]):
            return f"tensor {key!r} has malformed data_offsets"
    return ""


def detect_format(path: Path) -> str:
    """What ``path`` holds: ``huggingface``, ``sparse``, ``safetensors``, ``torchscript``,
    ``torch-zip`` (a ``torch.save`` archive), ``torch-legacy``, ``pickle`` or ``unknown``.

    Only file headers and zip listings are read; nothing is unpickled. A missing, empty or damaged file
    is a usage error.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"model file not found: {path}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"{path} is a directory without config.json: expected a Hugging Face save_pretrained folder or a model file")
        return "huggingface"
    _require_regular_file(path)
    with path.open("rb") as stream:
        head = stream.read(16)
    if not head:
        raise UsageError(f"model file {path} is empty")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            raise UsageError(f"{path} is a truncated or corrupt zip archive (TorchScript or torch.save file)") from None
        if any("/code/" in name or name.endswith("/constants.pkl") for name in names):
            return "torchscript"
        return "torch-zip" if any(name.endswith("data.pkl") for name in names) else "unknown"
    header = read_safetensors_header(path)
    if header is not None:
        metadata = header.get("__metadata__") or {}
        return "sparse" if metadata.get("format") in SPARSE_FORMATS else "safetensors"
    if head.startswith(LEGACY_TORCH_MAGIC):
        return "torch-legacy"
    return "pickle" if head[:1] == b"\x80" else "unknown"


def _require_regular_file(path: Path) -> None:
    """A FIFO blocks on open, a device never ends, a /proc file claims size 0: read none of them."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file (a FIFO, device or socket): pass a model file")
    if info.st_size == 0:
        raise UsageError(f"model file {path} is empty (or a special file that reports no size)")


# --- architectures -----------------------------------------------------------------------------
def _call_factory(factory: Callable[..., Any], kwargs: Mapping[str, Any], label: str) -> "nn.Module":
    """``factory(**kwargs)``, passing only the arguments it takes; it must give a module.

    A conftest ``model_factory()`` without parameters and a ``small_cnn(num_classes=...)`` both work.
    """
    from torch import nn

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: pass everything
        accepted = dict(kwargs)
    else:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        accepted = {k: v for k, v in kwargs.items() if takes_any or k in parameters}
    try:
        model = factory(**accepted)
    except (Exception, SystemExit) as exc:  # user code: report it in one line, as a usage problem
        raise UsageError(f"building the architecture {label} failed: {type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"the architecture {label} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_architecture(arch: Optional[str] = None, num_classes: Optional[int] = None, factory: Any = None, **arch_kwargs: Any) -> "nn.Module":
    """An untrained model to load weights into, from a ``factory`` (callable or module) or ``arch``.

    ``arch`` is ``torchvision:NAME`` (built with ``weights=None``: nothing is downloaded) or
    ``package.module:function``. The factory gets ``num_classes`` (when given) and ``arch_kwargs``
    (what a sparse artifact recorded), as far as its signature takes them.
    """
    from torch import nn

    kwargs = dict(arch_kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if factory is not None:
        if isinstance(factory, nn.Module):
            return factory
        return _call_factory(factory, kwargs, getattr(factory, "__name__", "model_factory"))
    if not arch:
        raise UsageError(f"no architecture given: pass {ARCH_SYNTAX}")
    module_name, colon, attribute = arch.partition(":")
    if not (colon and module_name and attribute):
        raise UsageError(f"--arch {arch!r} is not an architecture reference: use {ARCH_SYNTAX}")
    if module_name == "torchvision":
        import torchvision.models

        known = torchvision.models.list_models()
        if attribute not in known:
            raise UsageError(f"unknown torchvision architecture {attribute!r} (--arch {arch}); e.g. {', '.join(sorted(known)[:5])}")
        return _call_factory(lambda **kw: torchvision.models.get_model(attribute, weights=None, **kw), kwargs, arch)
    return _call_factory(import_callable(arch, f"--arch {arch}"), kwargs, arch)


# --- state dicts -------------------------------------------------------------------------------
def find_state_dict(obj: Any) -> Optional[dict[str, "torch.Tensor"]]:
    """The tensors of a state dict, plain or inside a checkpoint wrapper; None when there are none."""
    import torch

    def tensors_only(value: Any) -> bool:
        return isinstance(value, Mapping) and bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())

    if tensors_only(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_WRAPPERS:
            if tensors_only(obj.get(key)):
                return dict(obj[key])
    return None


def _strip_wrapper_prefix(state_dict: dict[str, "torch.Tensor"], expected: Mapping[str, Any]) -> dict[str, "torch.Tensor"]:
    """Keys saved through DataParallel or torch.compile carry a prefix the bare model lacks."""
    for prefix in KEY_PREFIXES:
        if all(k.startswith(prefix) for k in state_dict) and not any(k.startswith(prefix) for k in expected):
            return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def load_state_dict_into(model: "nn.Module", state_dict: dict[str, "torch.Tensor"], source: str, label: str) -> "nn.Module":
    """Copy ``state_dict`` into ``model``, or say in one line why they do not fit.

    Keys missing from the file are accepted when they alias a present tensor (tied weights, which
    safetensors stores once).
    """
    expected = model.state_dict()
    state_dict = _strip_wrapper_prefix(state_dict, expected)

    def storage_key(t: "torch.Tensor") -> tuple[Any, ...]:
        return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())

    present = {storage_key(expected[k]) for k in state_dict if k in expected}
    missing = [k for k in expected if k not in state_dict and storage_key(expected[k]) not in present]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [k for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    problems = []
    if mismatched:
        k = mismatched[0]
        problems.append(f"{k!r} has shape {tuple(state_dict[k].shape)} in the file but {tuple(expected[k].shape)} in the model{_more(mismatched)}")
    if missing:
        problems.append(f"missing key {missing[0]!r}{_more(missing)}")
    if unexpected:
        problems.append(f"unexpected key {unexpected[0]!r}{_more(unexpected)}")
    if problems:
        raise UsageError(f"the weights in {source} do not fit {label}: " + "; ".join(problems) + " (check --arch and --num-classes)")
    model.load_state_dict(state_dict, strict=False)
    return model


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


# --- the loaders (hook implementations) --------------------------------------------------------
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
        raise UsageError(_one_line(exc)) from None
    num_classes = options.get("num_classes")
    recorded_classes = recorded["arch_kwargs"].get("num_classes")
    if num_classes is not None and recorded_classes is not None and recorded_classes != num_classes:
        raise UsageError(f"{path} was compressed with num_classes={recorded_classes!r}, but --num-classes {num_classes} was given")
    factory = options.get("factory")

    def rebuild(**arch_kwargs: Any) -> "nn.Module":
        kwargs = dict(arch_kwargs)  # what the artifact recorded, for the architecture the user chose
        kwargs.pop("num_classes", None)
        return build_architecture(options.get("arch"), recorded_classes if num_classes is None else num_classes, factory, **kwargs)

    model_factory: Any = None
    if isinstance(factory, nn.Module):
        model_factory = factory
    elif factory is not None or options.get("arch") is not None:
        model_factory = rebuild
    try:
        model, _ = load_sparse_artifact(path, model_factory=model_factory, architectures=options.get("architectures"))
    except SparseArtifactError as exc:
        raise UsageError(_one_line(exc)) from None
    return _ready(model, options)


def _read_hf_config(folder: Path) -> dict[str, Any]:
    _require_regular_file(folder / "config.json")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {folder / 'config.json'}: {_one_line(exc)}") from None
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
    """Every file transformers may open in the folder must be a regular file (a FIFO would hang it)."""
    for entry in folder.iterdir():
        if not entry.is_dir() and not stat.S_ISREG(entry.stat().st_mode if entry.exists() else 0):
            raise UsageError(f"{entry} is not a regular file (a FIFO, device, socket or dangling link): refusing the folder {folder}")


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
        raise UsageError(f"cannot load the Hugging Face model in {path}: {_one_line(exc)}") from None
    return _ready(model, options)


@hookimpl(specname=HOOK)
def load_torchscript(path: Path, options: dict[str, Any]) -> Optional["nn.Module"]:
    """A TorchScript archive: code in TorchScript's own language, loaded without Python unpickling."""
    if detect_format(path) != "torchscript":
        return None
    import torch

    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the user chose the format
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch reports damaged archives as RuntimeError or OSError
        raise UsageError(f"cannot load the TorchScript archive {path}: {_one_line(exc)}") from None
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
        raise UsageError(f"cannot read the safetensors file {path}: {_one_line(exc)}") from None
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
    import pickle

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
            raise UsageError(f"cannot unpickle {path}: {_one_line(exc)}") from None
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise _refuse_pickle(path, f" (it names {named.group(1)})" if named else "") from None
    except Exception as exc:  # damaged archives: RuntimeError, OSError, EOFError...
        raise UsageError(f"cannot read {path}: {_one_line(exc)}") from None
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


# --- the public API ----------------------------------------------------------------------------
def load_model(
    path: str | Path,
    *,
    arch: Optional[str] = None,
    num_classes: Optional[int] = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
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
    defaults = {"arch": None, "num_classes": None, "trust_pickle": False, "trust_remote_code": False, "factory": None, "device": "cpu"}
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


def describe_model(model: "nn.Module") -> dict[str, Any]:
    """What a report says about the model under test: its class, its size and how sparse it is."""
    parameters = list(model.parameters())
    total = sum(p.numel() for p in parameters)
    nonzero = sum(int(p.count_nonzero()) for p in parameters)
    name = getattr(model, "original_name", None) or type(model).__qualname__  # TorchScript keeps the original
    return {
        "class": name,
        "parameters": total,
        "nonzero_parameters": nonzero,
        "density": nonzero / total if total else 1.0,
    }


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
            raise UsageError(f"cannot script {type(model).__name__} ({_one_line(exc)}); pass example_inputs to trace it instead") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.trace(model, example_inputs)
    except Exception as exc:  # tracing runs the user's forward
        raise UsageError(f"cannot trace {type(model).__name__}: {_one_line(exc)}") from None
