"""The output folder of a compression run: never mix two runs, never lose a finished one.

A folder that holds an earlier run's outputs is refused unless the user says what to do with them:
``--resume`` continues that run from its checkpoint, ``--overwrite`` removes those outputs (and only
those: other files in the folder are left alone) before anything is written. Everything is checked
before any training starts, so a bad ``--out`` costs seconds, not a run.

One run at a time: :class:`OutputLock` holds an exclusive ``flock`` on ``.safecompress.lock`` in the
folder for the whole run; a second run into it is refused with one line naming the holder.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Iterable, Optional

from safecompress.errors import UsageError
from safecompress.fsutil import remove_path, require_writable_dir
from safecompress.textsafe import printable

LOCK_NAME = ".safecompress.lock"

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
        remove_path(path)  # a file, a link itself (never its target) or a folder (hf/)


class OutputLock:
    """An exclusive hold on an output folder for one run (``with OutputLock(out):``).

    The lock file is never removed: a run that removed it could let two later runs lock two
    different files. Closing the descriptor (also at a crash or a kill) releases the lock.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self._fd: Optional[int] = None

    def __enter__(self) -> "OutputLock":
        import fcntl

        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise UsageError(f"cannot lock --out {self.out}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise UsageError(f"--out {self.out} is in use by another run ({printable(holder) or 'holder unknown'}); wait for it to finish or choose another --out") from None
        except OSError as exc:
            os.close(fd)
            raise UsageError(f"cannot lock --out {self.out}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: Optional[type[BaseException]], value: Optional[BaseException], traceback: Optional[TracebackType]) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def holds(self, out: Path) -> bool:
        return self._fd is not None and Path(out).resolve() == self.out.resolve()
