"""Configuration: command-line options over ``[tool.safecompress]`` in ``pyproject.toml`` over defaults."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import tomllib

from safecompress.errors import UsageError

if TYPE_CHECKING:
    import pluggy


def find_rootdir(start: Path) -> tuple[Path, dict[str, Any]]:
    """The nearest folder at or above ``start`` whose ``pyproject.toml`` has ``[tool.safecompress]``.

    Without one, ``start`` itself is the root and the settings are empty.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{candidate}: not valid TOML ({exc})") from None
            tool = data.get("tool", {})
            section = tool.get("safecompress") if isinstance(tool, dict) else None
            if section is not None:
                validate_section(section, candidate)
                return folder, section
    return start, {}


# [tool.safecompress]: each key and the kind of value it takes. Trust (--trust-pickle,
# --trust-remote-code, --trust-torchscript) is deliberately not here: it is given on the command line, never by a file.
SECTION_KINDS: dict[str, str] = {
    "tests": "paths",
    "data": "string",
    "data-options": "table",
    "gate-refs": "positive",
    "loop-members": "positive",
    "loop-population": "positive",
    "loop-robustness": "positive",
    "device": "string",
    "seed": "seed",
    "arch": "string",
    "num-classes": "positive",
    "recipe": "table",
    "compress": "table",
    "thresholds": "table",
}
RECIPE_KINDS: dict[str, str] = {
    "epochs": "count",
    "batch_size": "positive",
    "lr": "number",
    "optimizer": "string",
    "momentum": "number",
    "weight_decay": "number",
    "label_smoothing": "number",
}
# numpy's legacy seeding, the largest range every seeded library accepts.
MAX_SEED = 2**32 - 1
EXPECTED = {
    "paths": "a folder or a list of folders (strings)",
    "string": "a string",
    "table": "a table",
    "positive": "a whole number ≥ 1",
    "count": "a whole number ≥ 0",
    "seed": f"a whole number from 0 to {MAX_SEED}",
    "number": "a finite number",
}


def _fits(value: Any, kind: str) -> bool:
    whole = isinstance(value, int) and not isinstance(value, bool)
    if kind == "paths":
        return (isinstance(value, str) and bool(value)) or (isinstance(value, list) and all(isinstance(v, str) and v for v in value))
    if kind == "string":
        return isinstance(value, str) and bool(value)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "positive":
        return whole and value >= 1
    if kind == "count":
        return whole and value >= 0
    if kind == "seed":
        return whole and 0 <= value <= MAX_SEED
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_table(table: dict[str, Any], kinds: dict[str, str], where: str) -> None:
    for key, value in table.items():
        if key not in kinds:
            raise UsageError(f"{where}: unknown key {key!r}; known: {', '.join(kinds)}")
        if not _fits(value, kinds[key]):
            raise UsageError(f"{where}: {key!r} must be {EXPECTED[kinds[key]]}, not {value!r}")


def validate_section(section: Any, source: Path) -> None:
    """Refuse a ``[tool.safecompress]`` section with an unknown key or a value of the wrong type,
    naming the key and the type it needs (one line, exit 4), before anything runs.

    ``compress`` is checked key by key by CompressSettings; ``data-options`` by the dataset builder.
    """
    where = f"{source} [tool.safecompress]"
    if not isinstance(section, dict):
        raise UsageError(f"{source}: [tool.safecompress] must be a table, not {section!r}")
    _check_table(section, SECTION_KINDS, where)
    _check_table(section.get("recipe", {}), RECIPE_KINDS, f"{where[:-1]}.recipe]")
    for name, value in section.get("thresholds", {}).items():
        _number(name, value)


def config_from_args(
    args: argparse.Namespace,
    pluginmanager: "pluggy.PluginManager",
    command: str,
    *,
    start: Optional[Path] = None,
    ini: Optional[dict[str, Any]] = None,
) -> "Config":
    """The one way a run's configuration is made (CLI, pytest bridge, benchmark): options parsed
    into ``args``; the root is ``--rootdir``, else the nearest ``pyproject.toml`` with
    ``[tool.safecompress]`` above ``start`` (default: the working directory); ``ini`` replaces that
    section when a caller derives its own (the benchmark's per-task settings)."""
    given = getattr(args, "rootdir", None)
    rootdir, found = find_rootdir(given if given else (start or Path.cwd()))
    return Config(args, found if ini is None else ini, given.resolve() if given else rootdir, pluginmanager, command)


class Config:
    """What a run was asked to do. ``getoption`` reads the command line first, then the ini section."""

    def __init__(self, option: argparse.Namespace, ini: dict[str, Any], rootdir: Path, pluginmanager: "pluggy.PluginManager", command: str = "test") -> None:
        self.option = option
        self.ini = ini
        self.rootdir = rootdir
        self.pluginmanager = pluginmanager
        self.command = command
        seed = getattr(option, "seed", None)
        if seed is not None and not _fits(seed, "seed"):  # the bridge's --safecompress-seed arrives unchecked
            raise UsageError(f"--seed must be {EXPECTED['seed']}, not {seed!r}")
        self.thresholds: dict[str, float] = {}
        for name, value in dict(ini.get("thresholds", {})).items():
            self.thresholds[name] = _number(name, value)
        for item in getattr(option, "threshold", None) or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--threshold expects NAME=VALUE, got {item!r}")
            self.thresholds[name.strip()] = _number(name, value)

    def getoption(self, name: str, default: Any = None) -> Any:
        value = getattr(self.option, name, None)
        if value is None or value == []:
            value = self.ini.get(name.replace("_", "-"), self.ini.get(name))
        return default if value is None else value

    def threshold(self, name: str, default: Optional[float] = None) -> float:
        """A configured limit; a missing one is a usage error naming the configured ones."""
        if name in self.thresholds:
            return self.thresholds[name]
        if default is not None:
            return default
        known = ", ".join(sorted(self.thresholds)) or "none"
        raise UsageError(f"threshold {name!r} is not configured (set it in [tool.safecompress.thresholds] or --threshold {name}=VALUE; configured: {known})")

    @property
    def verbosity(self) -> int:
        return int(getattr(self.option, "verbose", 0) or 0) - int(getattr(self.option, "quiet", 0) or 0)


def _number(name: str, value: Any) -> float:
    """A threshold: a finite number (``true`` and ``"nan"`` are mistakes, and a NaN limit never fails)."""
    if isinstance(value, bool):
        raise UsageError(f"threshold {name!r} must be a finite number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"threshold {name!r} must be a finite number, not {value!r}") from None
    if not math.isfinite(number):
        raise UsageError(f"threshold {name!r} must be a finite number, not {value!r}")
    return number
