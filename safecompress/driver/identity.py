"""What makes a compression run the run it is, so ``--resume`` can refuse to continue another one.

The settings alone are not enough: the same options with another parent model, other thresholds,
other tests or other data would train the rest of the run on something the first updates never
saw, and the report would name the new parent. The checkpoint stores this identity; a resume
compares it field by field and names what differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

LABELS = {
    "parent_sha256": "the parent model",
    "thresholds": "the thresholds",
    "tests": "the collected tests",
    "data_sha256": "the data",
    "world_size": "the number of processes",
}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def run_identity(parent: Path, thresholds: Mapping[str, float], test_ids: Sequence[str], data_fingerprints: Mapping[str, str], world_size: int = 1) -> dict[str, Any]:
    """The identity of a run: parent bytes, thresholds, collected test ids and data, all hashed or
    plain; under torchrun also the world size (ranks shard every batch: another size is another run)."""
    data = hashlib.sha256(json.dumps(dict(data_fingerprints), sort_keys=True).encode()).hexdigest()
    identity = {
        "parent_sha256": file_sha256(parent),
        "thresholds": dict(sorted(thresholds.items())),
        "tests": sorted(test_ids),
        "data_sha256": data,
    }
    if world_size > 1:
        identity["world_size"] = world_size
    return identity


def differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two identities, one short phrase per field (every field when ``saved``
    predates identities)."""
    found = []
    for key, label in LABELS.items():
        before, now = saved.get(key), current.get(key)
        if before == now:
            continue
        if key == "thresholds" and isinstance(before, dict) and isinstance(now, dict):
            names = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            found.append(f"{label} ({', '.join(names)})")
        elif key == "tests" and isinstance(before, list) and isinstance(now, list):
            added, removed = len(set(now) - set(before)), len(set(before) - set(now))
            found.append(f"{label} ({added} added, {removed} removed)")
        elif key == "world_size":
            found.append(f"{label} ({before or 1} in the checkpoint, {now or 1} now)")
        elif isinstance(before, str) and isinstance(now, str):
            found.append(f"{label} (sha256 {before[:12]}… in the checkpoint, {now[:12]}… now)")
        else:
            found.append(f"{label} (not recorded in the checkpoint)")
    return found
