"""Configuration: command-line options over ``[tool.safecompress]`` in ``pyproject.toml`` over defaults."""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

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
            section = data.get("tool", {}).get("safecompress")
            if isinstance(section, dict):
                return folder, section
    return start, {}


class Config:
    """What a run was asked to do. ``getoption`` reads the command line first, then the ini section."""

    def __init__(self, option: argparse.Namespace, ini: dict[str, Any], rootdir: Path, pluginmanager: "pluggy.PluginManager", command: str = "test") -> None:
        self.option = option
        self.ini = ini
        self.rootdir = rootdir
        self.pluginmanager = pluginmanager
        self.command = command
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
        raise UsageError(
            f"threshold {name!r} is not configured (set it in [tool.safecompress.thresholds] or --threshold {name}=VALUE; configured: {known})"
        )

    @property
    def verbosity(self) -> int:
        return int(getattr(self.option, "verbose", 0) or 0) - int(getattr(self.option, "quiet", 0) or 0)


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"threshold {name!r} must be a number, not {value!r}") from None
