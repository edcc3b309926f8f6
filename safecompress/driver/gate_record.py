"""What a compressed artifact's gate needs, recorded in the artifact so that ``safecompress test`` and
the pytest bridge judge it exactly as ``compress`` did: the dense parent (its SHA-256 and where it
was), the requirements (which tests, which thresholds), the seed and a fingerprint of the data.

A relative requirement (one whose fixtures reach the dense parent) cannot be judged without that
parent. Rather than fall back to an absolute limit or skip in silence, which once turned a model
``compress`` had called red into "6 passed, 1 skipped", a run that cannot find the parent stops with
one line, unless the user asks for an absolute-only gate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from safecompress.errors import UsageError
from safecompress.modelio.formats import detect_format

if TYPE_CHECKING:
    from safecompress.runner.items import TestItem
    from safecompress.runner.session import SafetySession

GATE_KEY = "gate"  # the key under the artifact's extra metadata
#: Fixtures that hand a test its dense parent: a requirement reaching one is relative.
PARENT_FIXTURES = frozenset({"dense_model", "dense_parent"})


@dataclass(frozen=True)
class GateRecord:
    parent_sha256: str
    parent_path: str  # absolute, as the compressing run saw it
    parent_relative: Optional[str]  # relative to the artifact's folder (the demo keeps its parent beside it)
    requirements: list[str]
    thresholds: dict[str, float]
    seed: int
    data_sha256: str
    targets: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "parent_sha256": self.parent_sha256,
            "parent_path": self.parent_path,
            "parent_relative": self.parent_relative,
            "requirements": list(self.requirements),
            "targets": list(self.targets),
            "thresholds": dict(self.thresholds),
            "seed": self.seed,
            "data_sha256": self.data_sha256,
        }

    @classmethod
    def from_metadata(cls, raw: Any) -> Optional["GateRecord"]:
        """The record from an artifact's extra metadata; None when absent or not well formed (it is
        data from a file: checked field by field, never trusted to name code)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            record = cls(
                parent_sha256=str(raw["parent_sha256"]),
                parent_path=str(raw["parent_path"]),
                parent_relative=None if raw.get("parent_relative") is None else str(raw["parent_relative"]),
                requirements=[str(x) for x in raw.get("requirements", [])],
                thresholds={str(k): float(v) for k, v in dict(raw.get("thresholds", {})).items()},
                seed=int(raw["seed"]),
                data_sha256=str(raw.get("data_sha256", "")),
                targets=[str(x) for x in raw.get("targets", [])],
            )
        except (KeyError, TypeError, ValueError):
            return None
        if len(record.parent_sha256) != 64 or len(record.parent_path) > 4096:
            return None
        return record


def make_gate_record(session: "SafetySession", identity: Mapping[str, Any], parent: Path, artifact: Path, seed: int) -> GateRecord:
    parent = Path(parent).resolve()
    try:
        relative: Optional[str] = os.path.relpath(parent, Path(artifact).resolve().parent)
    except ValueError:  # another drive (Windows)
        relative = None
    return GateRecord(
        parent_sha256=str(identity["parent_sha256"]),
        parent_path=str(parent),
        parent_relative=relative,
        requirements=[item.nodeid for item in session.items if item.role == "requirement"],
        targets=[item.nodeid for item in session.items if item.role == "target"],
        thresholds=dict(session.config.thresholds),
        seed=seed,
        data_sha256=str(identity["data_sha256"]),
    )


def read_gate_record(model_path: Path) -> Optional[GateRecord]:
    """The gate record of a sparse artifact (None for any other model file, or an artifact without one)."""
    from safecompress.modelio.formats import detect_format

    path = Path(model_path)
    if not path.is_file() or detect_format(path) != "sparse":
        return None
    from safecompress.sparse import read_artifact_metadata

    extra = read_artifact_metadata(path).get("extra") or {}
    return GateRecord.from_metadata(extra.get(GATE_KEY) if isinstance(extra, Mapping) else None)


@dataclass
class ParentSearch:
    """Where the dense parent was looked for and what was found (for one clear line)."""

    found: Optional[Path]
    looked: list[str]
    why_not: list[str]


def find_recorded_parent(record: GateRecord, model_path: Path) -> ParentSearch:
    """The recorded parent at its relative place beside the artifact, else at its absolute path,
    accepted only when its SHA-256 is the recorded one."""
    from safecompress.driver.identity import file_sha256

    places = []
    if record.parent_relative is not None:
        places.append(Path(model_path).resolve().parent / record.parent_relative)
    places.append(Path(record.parent_path))
    looked, why_not = [], []
    for place in places:
        looked.append(str(place))
        if not place.is_file():  # absent, or not a regular file (a path from a file never makes us read a device or a pipe)
            continue
        if file_sha256(place) == record.parent_sha256:
            return ParentSearch(place, looked, why_not)
        why_not.append(f"{place} is not the recorded parent (another SHA-256)")
    return ParentSearch(None, looked, why_not)


def relative_requirements(session: "SafetySession", items: Sequence["TestItem"]) -> list[str]:
    """The requirements among ``items`` whose fixtures (transitively) reach the dense parent."""
    found = []
    for item in items:
        if item.role != "requirement":
            continue
        pending, seen = list(item.argnames), set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in PARENT_FIXTURES:
                found.append(item.nodeid)
                break
            try:
                pending.extend(getattr(session.fixtures.lookup(name, item.relpath), "argnames", ()))
            except Exception:  # noqa: BLE001 - an unknown fixture errors when the test runs, with its own message
                continue
    return found


def prepare_gate(session: "SafetySession", model_path: Path, dense_path: Optional[Path], absolute_only: bool) -> tuple[Optional[Path], list[str]]:
    """Decide which dense parent judges ``model_path`` and return it with the lines to show.

    An explicit ``dense_path`` wins. Otherwise the artifact's record is followed; the recorded seed
    applies unless ``--seed`` was given. When the collected requirements include a relative one and
    no parent is found, this is a :class:`UsageError` (exit 4) unless ``absolute_only``: a compressed
    artifact must not be judged more leniently because its parent went missing. A model that is not
    a compressed artifact and records no parent (a dense model, say) is judged on absolute limits,
    with a note."""
    notes: list[str] = []
    record = read_gate_record(model_path)
    if record is not None and getattr(session.config.option, "seed", None) is None and record.seed != int(session.config.getoption("seed", 0)):
        session.config.option.seed = record.seed
        notes.append(f"seed {record.seed}, as recorded by the run that compressed {Path(model_path).name} (give --seed to choose another)")
    if record is not None:
        changed = sorted(k for k in set(record.thresholds) | set(session.config.thresholds) if record.thresholds.get(k) != session.config.thresholds.get(k))
        if changed:
            notes.append(f"thresholds differ from the ones {Path(model_path).name} was compressed under: {', '.join(changed)}; verdicts may differ from compress's")
    if absolute_only:
        notes.append("absolute-only gate: requirements relative to the dense parent fall back to their absolute limits or skip")
        return None, notes
    if dense_path is not None:
        return dense_path, notes
    search = find_recorded_parent(record, model_path) if record is not None else None
    if search is not None and search.found is not None:
        notes.append(f"dense parent: {search.found} (recorded by the artifact, SHA-256 checked)")
        return search.found, notes
    relative = relative_requirements(session, session.items)
    if relative and not Path(model_path).exists():
        return None, notes  # loading the model says what is missing, after the data fixture has had its say
    if relative and record is None and detect_format(Path(model_path)) != "sparse":
        names = ", ".join(n.split("::")[-1] for n in relative)
        notes.append(f"{Path(model_path).name} is not a compressed artifact and names no dense parent: {names} fall back to absolute limits or skip (give --dense PARENT to judge it against one)")
        return None, notes
    if relative:
        names = ", ".join(n.split("::")[-1] for n in relative)
        if record is not None:
            where = f"the artifact records sha256:{record.parent_sha256[:12]}… at {' or '.join(search.looked)}" + (f" ({'; '.join(search.why_not)})" if search.why_not else ", not found")  # type: ignore[union-attr]
        else:
            where = "the model records no parent"
        raise UsageError(f"{names} judge(s) the model against its dense parent, which this run cannot find ({where}): give --dense PARENT, or --absolute-only for a gate on absolute limits only")
    return None, notes
