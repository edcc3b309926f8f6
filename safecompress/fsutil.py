"""Atomic file writes: a report or a model on disk is either the old one or the complete new one."""

from __future__ import annotations

import errno
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional


def _umask() -> int:
    """The process umask without changing it (Linux); 022 where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


# What a full or read-only disk looks like to the writers: OSError codes, and the messages of the
# torch and safetensors writers, which raise RuntimeError or their own types with the OS's words.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_STORAGE_WORDS = ("No space left on device", "File too large", "Disk quota exceeded", "Read-only file system", "file write failed")


def storage_failure(exc: BaseException, target: str | os.PathLike[str]) -> Optional[Exception]:
    """The one-line usage error for a write that failed because the disk is full (or the file too
    large, or the disk read-only), None for any other failure (a bug: let it surface)."""
    from safecompress.errors import UsageError

    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return UsageError(f"cannot write {target}: {exc.strerror}; earlier files are left as they were")
    words = next((w for w in _STORAGE_WORDS if w in str(exc)), None)
    if words is not None and not isinstance(exc, OSError):
        return UsageError(f"cannot write {target}: {words}; earlier files are left as they were")
    return None


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary file is created exclusively (a planted symlink is never followed) and the rename
    replaces a symlink at ``path`` itself, not its target. The result gets the usual permissions.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except Exception as exc:
        failure = storage_failure(exc, target)
        if failure is None:
            raise
        raise failure from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it takes ``path``'s place, so a
    kill leaves the old folder (or nothing), never a half-written one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it 0700: the folder gets the usual permissions
    try:
        try:
            yield staging
        except Exception as exc:
            failure = storage_failure(exc, target)
            if failure is None:
                raise
            raise failure from None
        previous = None
        if target.is_symlink() or target.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)) / "previous"
            os.replace(target, previous)
        os.replace(staging, target)
        if previous is not None:
            remove_path(previous.parent)
    finally:
        if staging.exists():
            remove_path(staging)


def remove_path(path: Path) -> None:
    """Remove a file, or a link itself (never its target), or a folder with everything in it."""
    import shutil

    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line to a log; a symlink at ``path`` is refused, never written through."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    try:
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        failure = storage_failure(exc, path)
        if failure is None:
            raise
        raise failure from None


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: turn them into null, recursively (strict parsers reject the bare tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def require_writable_dir(path: str | os.PathLike[str], label: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it, or raise a usage error
    naming ``label`` (the option): bad output targets are found before any work, not after."""
    from safecompress.errors import UsageError

    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".safecompress-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write to {label} {folder}: {exc.strerror or exc}") from None


def require_writable_file(path: str | os.PathLike[str], label: str) -> None:
    """``path`` can be written atomically: not a folder, and its folder writable."""
    from safecompress.errors import UsageError

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{label} {target} is a folder, not a file")
    require_writable_dir(target.parent, label)


class NotRegularFileError(ValueError):
    """A path that names a folder, FIFO, device or socket where a regular file was expected."""


def open_regular(path: str | os.PathLike[str], *, follow_links: bool = True) -> int:
    """A read descriptor for the regular file at ``path``: a FIFO is opened without blocking and then
    refused, as are folders and devices (:class:`NotRegularFileError`); with ``follow_links=False`` a
    symlink is refused too (OSError ELOOP). A missing file raises FileNotFoundError."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFileError(f"{path} is not a regular file (a folder, FIFO or device)")
    return fd


def read_regular_bytes(path: str | os.PathLike[str], limit: int, *, follow_links: bool = True) -> bytes:
    """The bytes of the regular file at ``path`` (:func:`open_regular`); a file larger than
    ``limit`` raises ValueError without being read."""
    fd = open_regular(path, follow_links=follow_links)
    with os.fdopen(fd, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > limit:
            raise ValueError(f"{path} is {size} bytes, more than the {limit} it can need")
        return stream.read(limit + 1)


def read_small_text(path: str | os.PathLike[str], limit: int = 1 << 20) -> str:
    """The UTF-8 text of a small regular file, or a usage error saying why not: a FIFO, folder or
    device, a huge or a non-UTF-8 file."""
    from safecompress.errors import UsageError

    target = Path(path)
    try:
        raw = read_regular_bytes(target, limit)
    except ValueError as exc:  # not a regular file, or too large
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {target}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{target} is not UTF-8 text (byte {exc.start})") from None
