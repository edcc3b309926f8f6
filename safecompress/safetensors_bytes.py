"""Canonical safetensors bytes, and a digest that covers the header as well as the data.

The safetensors library writes its metadata from a hash map, so two identical runs wrote artifacts
whose bytes differed in key order; and a checksum over tensor bytes alone let a header edit (F32 →
I32 on one bias) load a different model unnoticed. Here tensors are laid out in name order, the
header is JSON with sorted keys, and :func:`header_digest` hashes the canonical header (less the
digest itself) together with the data, so any changed byte of either is caught. The files stay
ordinary safetensors files that the library and every other reader load.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # torch is imported where tensors are written: model-file sniffing must stay light
    import torch

# torch dtype names (``str(dtype)``) -> safetensors dtype codes.
DTYPE_NAMES = {
    "torch.float64": "F64",
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}
DIGEST_KEY = "sha256"


def _canonical(header: Mapping[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def header_digest(header: Mapping[str, Any], data: bytes | memoryview) -> str:
    """SHA-256 of the canonical header without its own digest entry, then the data bytes."""
    metadata = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != DIGEST_KEY}
    digest = hashlib.sha256(_canonical({**header, "__metadata__": metadata}))
    digest.update(data)
    return digest.hexdigest()


def serialize(tensors: Mapping[str, "torch.Tensor"], metadata: Mapping[str, str]) -> bytes:
    """The safetensors bytes of ``tensors`` in name order, with ``metadata`` plus a ``sha256``
    digest of header and data; the same inputs give the same bytes."""
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    import torch

    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        if str(tensor.dtype) not in DTYPE_NAMES:
            raise ValueError(f"{name!r} has dtype {tensor.dtype}, which this writer does not store")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": DTYPE_NAMES[str(tensor.dtype)], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    data = b"".join(chunks)
    header["__metadata__"] = {**{k: str(v) for k, v in metadata.items() if k != DIGEST_KEY}}
    header["__metadata__"][DIGEST_KEY] = header_digest(header, data)
    text = _canonical(header)
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return len(text).to_bytes(8, "little") + text + data


# The largest header read from an untrusted file: a state dict of tens of thousands of tensors has a
# header of a few MB; the safetensors library's own cap (100 MB) still lets json.loads take gigabytes.
MAX_HEADER_BYTES = 16 << 20


class SafetensorsLayoutError(ValueError):
    """Bytes that are not a safetensors file; the message says what is wrong."""


def split(raw: bytes) -> tuple[dict[str, Any], memoryview]:
    """The parsed header and the data section of safetensors bytes (the header bounded first)."""
    if len(raw) < 8:
        raise SafetensorsLayoutError("shorter than a safetensors header")
    length = int.from_bytes(raw[:8], "little")
    if length > MAX_HEADER_BYTES:
        raise SafetensorsLayoutError(f"its header declares {length} bytes, over the {MAX_HEADER_BYTES >> 20} MiB limit")
    if 8 + length > len(raw):
        raise SafetensorsLayoutError("its header runs past the end of the file")
    try:
        header = json.loads(raw[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SafetensorsLayoutError("its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise SafetensorsLayoutError("its header is not a JSON object")
    return header, memoryview(raw)[8 + length :]
