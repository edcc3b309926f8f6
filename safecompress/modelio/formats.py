"""Recognising a model file from its header alone (nothing is unpickled, nothing executed), and
refusing what cannot be a model file: special files, malformed safetensors headers, empty files."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

from safecompress.errors import UsageError
from safecompress.safetensors_bytes import MAX_HEADER_BYTES

# Metadata ``format`` of a sparse artifact: the name in the spec, and the one safecompress.sparse writes.
SPARSE_FORMATS = ("safecompress.sparse",)
# torch.save's legacy (pre-zip) format starts with its magic number, pickled with protocol 2.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
# torch.save stores zip entries uncompressed; an archive may unpack to at most its own size plus
# this slack, so a 1 MB deflated file cannot make torch.load allocate a gigabyte.
ZIP_EXPANSION_SLACK = 1 << 20


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
        if length > MAX_HEADER_BYTES:
            raise UsageError(f"{path} is a corrupt safetensors file (its header declares {length} bytes, over the {MAX_HEADER_BYTES >> 20} MiB limit)")
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
    require_regular_file(path)
    with path.open("rb") as stream:
        head = stream.read(16)
    if not head:
        raise UsageError(f"model file {path} is empty")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UsageError(f"{path} is a truncated or corrupt zip archive (TorchScript or torch.save file)") from None
        names = [entry.filename for entry in entries]
        unpacked = sum(entry.file_size for entry in entries)
        if unpacked > path.stat().st_size + ZIP_EXPANSION_SLACK:
            raise UsageError(f"{path} unpacks to {unpacked} bytes from {path.stat().st_size}: torch.save never compresses, refusing a compressed archive")
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


def require_regular_file(path: Path) -> None:
    """A FIFO blocks on open, a device never ends, a /proc file claims size 0: read none of them."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file (a FIFO, device or socket): pass a model file")
    if info.st_size == 0:
        raise UsageError(f"model file {path} is empty (or a special file that reports no size)")
