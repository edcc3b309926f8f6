"""The compact sparse artifact: kept values plus packed bitmasks in one safetensors file.

Layout (format ``safecompress.sparse`` version 2):

- ``values/<param>``: 1-D tensor of the kept weights of a maskable parameter, in row-major order;
- ``mask/<param>``: uint8 ``numpy.packbits`` of the flattened boolean mask (big-endian bit order);
- ``dense/<key>``: every other state-dict entry (biases, norms, buffers, unmasked weights) as is;
- metadata (strings): ``format``, ``format_version``, ``safecompress_version``, ``torch_version``,
  ``arch`` (``"module:factory"`` or ""), ``arch_kwargs`` (JSON), ``layers`` (JSON: shape, dtype, nnz, density),
  ``aliases`` (JSON: tied state-dict keys → the key stored), ``density`` (kept / maskable by the masks),
  ``maskable_density`` and ``whole_model_density`` (nonzero fractions, as every report gives them), ``extra`` (JSON) and
  ``crc32`` over all tensor names and bytes, so corruption is caught on load.

That is 4 bytes per kept fp32 weight + 1 bit per maskable weight + the dense rest + a header of a few
KB: the information minimum up to the header. Loading rebuilds an ordinary dense module bit-exactly.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch
from torch import nn

from safecompress.fsutil import atomic_path, atomic_write_bytes
from safecompress.safetensors_bytes import MAX_HEADER_BYTES, SafetensorsLayoutError, header_digest, serialize, split
from safecompress.sparse.layers import find_maskable, model_densities, unwrap_model
from safecompress.textsafe import first_line

FORMAT = "safecompress.sparse"
FORMAT_VERSION = "2"
READABLE_VERSIONS = ("1", "2")

PathLike = Union[str, "os.PathLike[str]"]


class SparseArtifactError(ValueError):
    """A file that is not a readable sparse artifact, or that does not fit the model; one-line message."""


@dataclass(frozen=True)
class ArtifactInfo:
    """Sizes of a saved artifact against the information minimum and the dense state dict."""

    path: str
    file_bytes: int
    info_min_bytes: int
    dense_bytes: int
    density: float

    @property
    def ratio_to_info_min(self) -> float:
        return self.file_bytes / self.info_min_bytes

    @property
    def ratio_to_dense(self) -> float:
        """File size over the dense state dict's tensor bytes (a dense file adds only its header)."""
        return self.file_bytes / self.dense_bytes


def save_sparse_artifact(
    model: nn.Module,
    path: PathLike,
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> ArtifactInfo:
    """Write ``model`` as a sparse artifact; ``masks`` default to the nonzeros of its maskable weights.

    ``arch`` (e.g. ``"safecompress.models:small_cnn"``) with JSON-able ``arch_kwargs`` lets
    :func:`load_sparse_artifact` rebuild the model without code from the user. A weight that is
    nonzero outside its mask is an error: the artifact would silently change the model.
    """
    from safecompress import __version__

    model = unwrap_model(model)
    state = model.state_dict()
    if masks is None:
        masks = {m.name: m.param.detach() != 0 for m in find_maskable(model)}
    tensors: dict[str, torch.Tensor] = {}
    layers: dict[str, dict[str, Any]] = {}
    owners: dict[tuple, str] = {}
    for name, mask in masks.items():
        if name not in state:
            raise ValueError(f"mask for {name!r}, which is not in the model's state dict")
        weight = state[name].detach()
        owners.setdefault(_storage_key(weight), name)
        if tuple(mask.shape) != tuple(weight.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, weight has {tuple(weight.shape)}")
        flat_mask = mask.detach().flatten().to(weight.device, torch.bool)
        flat = weight.flatten()
        outside = int(torch.count_nonzero(flat[~flat_mask]))
        if outside:
            raise ValueError(f"{name!r} has {outside} nonzero weights outside its mask; apply the mask first")
        tensors[f"values/{name}"] = flat[flat_mask].cpu().contiguous()
        tensors[f"mask/{name}"] = torch.from_numpy(np.packbits(flat_mask.cpu().numpy()))
        nnz = int(flat_mask.sum())
        layers[name] = {
            "shape": list(weight.shape),
            "dtype": str(weight.dtype).removeprefix("torch."),
            "nnz": nnz,
            "density": nnz / max(flat_mask.numel(), 1),
        }
    aliases: dict[str, str] = {}
    for key, value in state.items():
        if key in masks:
            continue
        owner = owners.setdefault(_storage_key(value), key)
        if owner != key:  # a tied weight is stored once
            aliases[key] = owner
        else:
            tensors[f"dense/{key}"] = value.detach().cpu().contiguous().clone()
    kept = sum(v["nnz"] for v in layers.values())
    total = sum(math.prod(v["shape"]) for v in layers.values())
    densities = model_densities(model, list(masks))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "safecompress_version": __version__,
        "torch_version": torch.__version__,
        "arch": arch or "",
        "arch_kwargs": json.dumps(dict(arch_kwargs or {}), sort_keys=True),
        "layers": json.dumps(layers),
        "aliases": json.dumps(aliases, sort_keys=True),
        "density": repr(kept / total if total else 1.0),
        **{key: repr(densities[key]) for key in ("maskable_density", "whole_model_density")},
        "extra": json.dumps(dict(extra_metadata or {}), sort_keys=True, default=str),
    }
    path = os.fspath(path)
    atomic_write_bytes(path, serialize(tensors, metadata))  # a kill mid-write leaves the previous artifact
    mask_bits = sum(math.prod(v["shape"]) for v in layers.values())
    kept_bytes = sum(tensors[f"values/{n}"].nbytes for n in layers)
    rest = sum(t.nbytes for k, t in tensors.items() if k.startswith("dense/"))
    dense = sum(t.nbytes for t in state.values())
    return ArtifactInfo(path, os.path.getsize(path), kept_bytes + math.ceil(mask_bits / 8) + rest, dense, kept / max(total, 1))


def is_sparse_artifact(path: PathLike) -> bool:
    """Whether ``path`` is a safetensors file in this format (reads only the header; never raises)."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > MAX_HEADER_BYTES:
                return False
            header = json.loads(f.read(size))
        return header.get("__metadata__", {}).get("format") == FORMAT
    except (OSError, ValueError, struct.error, AttributeError):
        return False


def load_sparse_artifact(
    path: PathLike,
    model_factory: Callable[..., nn.Module] | nn.Module | None = None,
    *,
    architectures: Mapping[str, Callable[..., Any]] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load an artifact into a dense module bit-exactly; returns ``(model, metadata)``.

    ``model_factory`` is a module to fill, or a callable called with the stored ``arch_kwargs``
    (the caller's own code). Without it the stored ``arch`` is looked up in ``architectures``
    (default: the built-in registry of :mod:`safecompress.architectures`) or as
    ``torchvision:NAME``: a file never chooses code outside that registry. Every declared shape is
    checked against the model before anything is unpacked. Raises :class:`SparseArtifactError` for
    anything unreadable, unregistered or mismatched.
    """
    path = os.fspath(path)
    metadata, tensors = _read(path)
    _check_backed(path, metadata, tensors)  # before any model is built: the file bounds the model's size
    model = _build_model(path, metadata, tensors, model_factory, architectures)
    target = unwrap_model(model)
    _check_declared_shapes(path, metadata, tensors, target.state_dict())
    target.load_state_dict(_dense_state(path, metadata, tensors))
    return model, metadata


def export_state_dict(model: nn.Module, path: PathLike) -> str:
    """Plain dense state dict for users who want an ordinary model (``.safetensors`` or ``torch.save``)."""
    path = os.fspath(path)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in unwrap_model(model).state_dict().items()}
    with atomic_path(path) as tmp:  # never a 0-byte export, never through a planted symlink
        if path.endswith(".safetensors"):
            from safetensors.torch import save_file

            save_file(state, os.fspath(tmp))
        else:
            torch.save(state, tmp)
    return path


def export_program(model: nn.Module, path: PathLike, example_inputs: tuple[Any, ...]) -> str:
    """A self-contained ``torch.export`` program (``.pt2``), the successor of TorchScript.

    TorchScript (``torch.jit``) is deprecated in the torch we target; ``torch.export.load`` reads this.
    """
    model = unwrap_model(model).eval()
    program = torch.export.export(model, tuple(example_inputs))
    with atomic_path(path) as tmp:
        torch.export.save(program, os.fspath(tmp))
    return os.fspath(path)


def _storage_key(t: torch.Tensor) -> tuple:
    """Identity of a tensor's memory; empty tensors never count as tied."""
    if t.numel() == 0:
        return ("empty", id(t))
    return (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())


def _crc32(tensors: Mapping[str, torch.Tensor]) -> str:
    crc = 0
    for key in sorted(tensors):
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(tensors[key].reshape(-1).view(torch.uint8).numpy().tobytes(), crc)
    return f"{crc:08x}"


def read_artifact_metadata(path: PathLike) -> dict[str, Any]:
    """The validated metadata of an artifact, from its header alone (no tensor is read)."""
    from safetensors import safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types, OSError and others
        raise SparseArtifactError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None
    return _parse_metadata(path, raw)


def _read(path: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata and tensors of the artifact at ``path``, its checksum verified before either is used."""
    from safetensors.torch import load

    if not os.path.isfile(path):
        raise SparseArtifactError(f"{path}: no such file")
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
        header, data = split(raw)
        tensors = load(raw)
    except SafetensorsLayoutError as exc:
        raise SparseArtifactError(f"{path}: not a readable safetensors file ({exc})") from None
    except Exception as exc:  # safetensors raises its own error types, OSError and others
        raise SparseArtifactError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None
    raw_metadata = header.get("__metadata__")
    if not isinstance(raw_metadata, dict):
        raise SparseArtifactError(f"{path}: not a safecompress sparse artifact (no metadata)")
    metadata = _parse_metadata(path, raw_metadata)
    if metadata["format_version"] == "1":
        intact = raw_metadata.get("crc32") == _crc32(tensors)
    else:
        intact = raw_metadata.get("sha256") == header_digest(header, data)
    if not intact:
        raise SparseArtifactError(f"{path}: checksum mismatch, the file is corrupt")
    return metadata, tensors


def _parse_metadata(path: str, raw: Mapping[str, str]) -> dict[str, Any]:
    if raw.get("format") != FORMAT:
        raise SparseArtifactError(f"{path}: not a safecompress sparse artifact (format {raw.get('format')!r})")
    if raw.get("format_version") not in READABLE_VERSIONS:
        raise SparseArtifactError(f"{path}: unsupported artifact version {raw.get('format_version')!r}")
    try:
        metadata = {
            "format_version": raw["format_version"],
            "safecompress_version": raw.get("safecompress_version", ""),
            "torch_version": raw.get("torch_version", ""),
            "arch": raw.get("arch", ""),
            "arch_kwargs": json.loads(raw.get("arch_kwargs", "{}")),
            "layers": json.loads(raw["layers"]),
            "aliases": json.loads(raw.get("aliases", "{}")),
            "density": float(raw["density"]),
            "maskable_density": float(raw["maskable_density"]) if "maskable_density" in raw else None,
            "whole_model_density": float(raw["whole_model_density"]) if "whole_model_density" in raw else None,
            "extra": json.loads(raw.get("extra", "{}")),
        }
    except (KeyError, ValueError) as exc:
        raise SparseArtifactError(f"{path}: bad artifact metadata ({first_line(exc)})") from None
    problem = _metadata_problem(metadata)
    if problem:
        raise SparseArtifactError(f"{path}: bad artifact metadata ({problem})")
    return metadata


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _metadata_problem(metadata: Mapping[str, Any]) -> str:
    """What is malformed in the parsed metadata ("" when nothing): it is read before any use."""
    if not isinstance(metadata["arch"], str):
        return "arch is not a string"
    for key in ("arch_kwargs", "layers", "aliases", "extra"):
        if not isinstance(metadata[key], dict):
            return f"{key} is not a JSON object"
    for name, info in metadata["layers"].items():
        shape = info.get("shape") if isinstance(info, dict) else None
        if not (isinstance(shape, list) and all(_is_count(n) for n in shape) and _is_count(info.get("nnz"))):
            return f"layer {name!r} needs a shape of non-negative integers and an nnz count"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata["aliases"].items()):
        return "aliases must map names to names"
    return ""


def _check_backed(path: str, metadata: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Every declared layer is held by the file: its kept values and a bitmask of one bit per weight.

    Checked from the tensors alone, before a model is built, so a header cannot make us allocate a
    model the file does not carry (a 1 KB file declaring a width-3000 network).
    """
    for name, info in metadata["layers"].items():
        values, packed = tensors.get(f"values/{name}"), tensors.get(f"mask/{name}")
        numel = math.prod(info["shape"])
        if values is None or packed is None or values.dim() != 1 or packed.dtype != torch.uint8 or packed.numel() != math.ceil(numel / 8):
            raise SparseArtifactError(f"{path}: layer {name!r} is incomplete or malformed")
        if values.numel() != info["nnz"] or info["nnz"] > numel:
            raise SparseArtifactError(f"{path}: layer {name!r}: mask and values disagree")


def _dense_state(path: str, metadata: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {k.removeprefix("dense/"): v for k, v in tensors.items() if k.startswith("dense/")}
    for name, info in metadata["layers"].items():
        values, packed = tensors[f"values/{name}"], tensors[f"mask/{name}"]
        shape = tuple(info["shape"])
        numel = math.prod(shape)
        mask = torch.from_numpy(np.unpackbits(packed.numpy(), count=numel).astype(bool))
        if int(mask.sum()) != values.numel():
            raise SparseArtifactError(f"{path}: layer {name!r}: mask and values disagree")
        weight = torch.zeros(numel, dtype=values.dtype)
        weight[mask] = values
        state[name] = weight.view(shape)
    for key, owner in metadata["aliases"].items():
        if owner not in state:
            raise SparseArtifactError(f"{path}: {key!r} is tied to {owner!r}, which the artifact lacks")
        state[key] = state[owner]
    return state


def _declared(metadata: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The state-dict shapes and dtypes the artifact claims, read from its header alone."""
    declared = {k.removeprefix("dense/"): (tuple(v.shape), v.dtype) for k, v in tensors.items() if k.startswith("dense/")}
    for name, info in metadata["layers"].items():
        values = tensors.get(f"values/{name}")
        declared[name] = (tuple(info["shape"]), values.dtype if values is not None else torch.float32)
    for key, owner in metadata["aliases"].items():
        if owner in declared:
            declared[key] = declared[owner]
    return declared


def _check_declared_shapes(path: str, metadata: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """The artifact must describe exactly ``expected`` (a state dict, possibly on the meta device),
    shapes and dtypes, before a single layer is unpacked: a header may declare any size, the model
    fixes the real one, and ``load_state_dict`` would silently cast an int32 bias to float."""
    declared = _declared(metadata, tensors)
    missing, unexpected = sorted(set(expected) - set(declared)), sorted(set(declared) - set(expected))
    if missing or unexpected:
        raise SparseArtifactError(f"{path}: artifact does not fit the architecture: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, value in expected.items():
        shape, dtype = declared[key]
        if tuple(value.shape) != shape:
            raise SparseArtifactError(f"{path}: {key!r} has shape {shape} in the artifact, {tuple(value.shape)} in the model")
        if value.dtype != dtype:
            raise SparseArtifactError(f"{path}: {key!r} has dtype {dtype} in the artifact, {value.dtype} in the model")


def _build_model(
    path: str,
    metadata: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    factory: Callable[..., nn.Module] | nn.Module | None,
    architectures: Mapping[str, Callable[..., Any]] | None,
) -> nn.Module:
    """The model the artifact is loaded into, built for real only after a build on the ``meta``
    device (no memory) showed that its shapes are the ones the file declares and carries."""
    if isinstance(factory, nn.Module):
        return factory
    from safecompress.architectures import ArchitectureError, builtin_architectures, resolve_recorded

    if factory is not None:
        recorded = metadata["arch_kwargs"]
        build: Callable[[], Any] = lambda: factory(**recorded)  # noqa: E731 - the caller checked them against its factory
        label = getattr(factory, "__name__", "the model factory")
    else:
        ref = metadata["arch"]
        if not ref:
            raise SparseArtifactError(f"{path}: the artifact names no architecture; pass --arch (model_factory in Python)")
        try:
            build = resolve_recorded(ref, metadata["arch_kwargs"], builtin_architectures() if architectures is None else architectures)
        except ArchitectureError as exc:
            raise SparseArtifactError(f"{path}: {exc}; to load it, pass --arch with an architecture you trust (and --num-classes N)") from None
        label = repr(ref)
    try:
        with torch.device("meta"):
            probe = _as_module(path, build())
    except SparseArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001 - a factory that cannot build on meta, or arguments it rejects
        if set(metadata["arch_kwargs"]) - {"num_classes"}:  # the file's sizes: never allocated unchecked
            recorded = ", ".join(sorted(metadata["arch_kwargs"]))
            failure = f"{type(exc).__name__}: {first_line(exc)}"
            unchecked = "so their sizes cannot be checked before allocating"
            raise SparseArtifactError(f"{path}: building {label} with the recorded arguments ({recorded}) on the meta device failed ({failure}), {unchecked}") from None
        probe = None
    if probe is not None:
        _check_declared_shapes(path, metadata, tensors, unwrap_model(probe).state_dict())
    try:
        return _as_module(path, build())
    except SparseArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded arguments the factory rejects (a string width...)
        raise SparseArtifactError(f"{path}: building {label} with the recorded arguments failed: {type(exc).__name__}: {first_line(exc)}") from None


def _as_module(path: str, model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise SparseArtifactError(f"{path}: the model factory returned {type(model).__name__}, not a torch module")
    return model
