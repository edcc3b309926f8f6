"""Built-in plugin: registers the report writers and writes the requested files at session end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from safecompress.errors import UsageError
from safecompress.fsutil import require_writable_file
from safecompress.hookspecs import hookimpl
from safecompress.plugins import collect_registry
from safecompress.reporters.formats import write_json, write_junitxml, write_markdown

if TYPE_CHECKING:
    from safecompress.runner.session import SafetySession

SHORTHANDS = {"json": "json", "junitxml": "junitxml", "report_md": "markdown"}


@hookimpl
def safecompress_register_reporters(register: Callable[..., None]) -> None:
    register("json", write_json)
    register("junitxml", write_junitxml)
    register("markdown", write_markdown)


def requested_outputs(session: "SafetySession") -> list[tuple[str, Path]]:
    config = session.config
    outputs = [(fmt, Path(path)) for option, fmt in SHORTHANDS.items() if (path := getattr(config.option, option, None))]
    for item in getattr(config.option, "report", None) or []:
        fmt, sep, path = item.partition("=")
        if not sep:
            raise UsageError(f"--report expects FORMAT=PATH, got {item!r}")
        outputs.append((fmt, Path(path)))
    return outputs


@hookimpl
def safecompress_sessionstart(session: "SafetySession") -> None:
    """Check every requested report before any test runs: a known format, one file per report, a
    folder it can be written to. A bad target found after an hour of compression is an hour lost."""
    outputs = requested_outputs(session)
    if not outputs:
        return
    writers = collect_registry(session.config.pluginmanager, "safecompress_register_reporters")
    seen: dict[Path, str] = {}
    for fmt, path in outputs:
        if fmt not in writers:
            raise UsageError(f"unknown report format {fmt!r}; known: {', '.join(sorted(writers))}")
        resolved = path.resolve()
        if resolved in seen:
            raise UsageError(f"the {seen[resolved]} and {fmt} reports would both be written to {path}: give each its own file")
        seen[resolved] = fmt
        require_writable_file(path, f"the {fmt} report")


@hookimpl(trylast=True)
def safecompress_sessionfinish(session: "SafetySession", exitstatus: int) -> None:
    outputs = requested_outputs(session)
    if not outputs:
        return
    writers = collect_registry(session.config.pluginmanager, "safecompress_register_reporters")
    result = session.result(exitstatus)
    for fmt, path in outputs:
        if fmt not in writers:
            raise UsageError(f"unknown report format {fmt!r}; known: {', '.join(sorted(writers))}")
        try:
            writers[fmt](result, path)
        except OSError as exc:
            raise UsageError(f"cannot write {fmt} report to {path}: {exc.strerror or exc}") from exc
