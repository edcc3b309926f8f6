"""The output folder of a compression run: never mix two runs, never lose a finished one.

A folder that holds an earlier run's outputs is refused unless the user says what to do with them:
``--resume`` continues that run from its checkpoint, ``--overwrite`` removes those outputs (and only
those: other files in the folder are left alone) before anything is written. Everything is checked
before any training starts, so a bad ``--out`` costs seconds, not a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from safecompress.errors import UsageError
from safecompress.fsutil import require_writable_dir

#: What ``compress`` writes into ``--out``; temporary files of the atomic writer start with ".<name>.".
RUN_OUTPUTS = (
    "checkpoint.pt",
    "decisions.jsonl",
    "report.json",
    "report.md",
    "report.html",
    "model.safetensors",
    "model_dense_export.pt",
    "hf",  # a transformers parent's compressed model as a save_pretrained folder, zeros in place
)


def earlier_outputs(out: Path, names: Iterable[str] = RUN_OUTPUTS) -> list[Path]:
    """The files of an earlier run in ``out`` (complete or half-written), sorted by name."""
    names = tuple(names)
    if not out.is_dir():
        return []
    return sorted(entry for entry in out.iterdir() if entry.name in names or any(entry.name.startswith(f".{name}.") for name in names))


def prepare_output_folder(out: Path, *, resume: bool, overwrite: bool, names: Iterable[str] = RUN_OUTPUTS, resumable: bool = True) -> None:
    """Make ``out`` ready for a run, or refuse it with one line; see the module docstring.
    ``resumable`` says whether the refusal may suggest ``--resume`` (the demo has none)."""
    names = tuple(names)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if resume:
        if not (out / "checkpoint.pt").is_file():
            raise UsageError(f"--resume: there is no checkpoint at {out / 'checkpoint.pt'} to resume from; run without --resume to start")
        require_writable_dir(out, "--out")
        return
    found = earlier_outputs(out, names)
    if found and not overwrite:
        shown = ", ".join(p.name for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        choices = "pass --resume to continue it, --overwrite to replace it," if resumable else "pass --overwrite to replace it"
        raise UsageError(f"--out {out} holds an earlier run ({shown}): {choices} or another --out")
    require_writable_dir(out, "--out")
    for path in found:
        path.unlink()
