"""Settings of one compression run: command line over ``[tool.safecompress.compress]`` over defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional

from safecompress.errors import UsageError

DEFAULT_CANDIDATES = ("random:0", "random:1", "gradient", "momentum")
SHIP_FROM = ("anywhere", "final-phase")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast on a CUDA device that supports it, else fp32


@dataclass
class CompressSettings:
    density: float = 0.1
    epochs: Optional[int] = None  # None: the recipe's epochs
    candidates: int = 4
    probe_steps: int = 8
    lambda_: float = 1.0
    updates: int = 20
    stop_fraction: float = 0.1
    final_checks: int = 6  # cheap-test checkpoints over the final phase; the best one ships (0: the last step ships)
    distribution: str = "erk"
    init: str = "magnitude"
    strategies: tuple[str, ...] = DEFAULT_CANDIDATES
    vary_prune: bool = True  # candidates also differ in prune fraction (p, 0.5p, 1.5p...)
    out: Path = Path("safecompress-out")
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    remedies: bool = True
    overwrite: bool = False  # replace an earlier run's outputs in ``out`` (otherwise refused)
    attempts: int = 2  # when no judged checkpoint passes, rerun with what was learned, up to this many runs
    stall_gain: float = 0.005  # margin a remedy at its cap must gain over two decisions to keep its rung
    ship_from: str = "anywhere"  # judged points that may ship: "anywhere" in training, or "final-phase" only
    include: tuple[str, ...] = ()  # glob patterns of parameter names to mask (empty: Conv/Linear/attention weights)
    exclude: tuple[str, ...] = ()  # glob patterns of parameter names never masked
    embeddings: bool = False  # mask nn.Embedding weights too
    precision: str = "auto"  # training steps under bf16 autocast ("auto": on CUDA where supported); tests always judge in fp32
    compile: bool = False  # wrap the training step's model in torch.compile
    budget: Optional[float] = None  # at most this many times the work of training alone (None: no limit; safecompress.driver.budget)

    def __post_init__(self) -> None:
        for item in fields(self):
            setattr(self, item.name, _checked(item.name, getattr(self, item.name), FIELD_KINDS[item.name]))
        if not 0.0 < self.density <= 1.0:
            raise UsageError(f"--density must be in (0, 1], got {self.density}")
        if self.resume and self.overwrite:
            raise UsageError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
        if self.candidates < 1:
            raise UsageError(f"--candidates must be ≥ 1, got {self.candidates}")
        if self.attempts < 1:
            raise UsageError(f"--attempts must be ≥ 1, got {self.attempts}")
        if self.stall_gain < 0:
            raise UsageError(f"stall-gain must be ≥ 0, got {self.stall_gain}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.ship_from not in SHIP_FROM:
            raise UsageError(f"ship-from must be one of {', '.join(SHIP_FROM)}, not {self.ship_from!r}")
        if self.probe_steps < 0 or self.updates < 0 or self.final_checks < 0:
            raise UsageError("--probe-steps, --updates and --final-checks must be ≥ 0")
        if self.budget is not None and self.budget < 1.0:
            raise UsageError(f"--budget is a multiple of the training work and must be ≥ 1, got {self.budget:g}")
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be ≥ 1, got {self.epochs}")
        if self.lambda_ < 0:
            raise UsageError(f"--lambda must be ≥ 0, got {self.lambda_}")
        if not 0.0 <= self.stop_fraction < 1.0:
            raise UsageError(f"stop-fraction must be in [0, 1), got {self.stop_fraction}")
        if self.seed < 0:
            raise UsageError(f"--seed must be ≥ 0, got {self.seed}")
        from safecompress.sparse.allocation import DISTRIBUTIONS, INITS

        if self.distribution not in DISTRIBUTIONS or self.init not in INITS:
            raise UsageError(f"distribution must be one of {', '.join(DISTRIBUTIONS)} and init one of {', '.join(INITS)}")
        for text in self.strategies:  # the growth names are checked against the plugins' registry by the job
            growth, _, seed = text.partition(":")
            if not growth or (seed and not seed.isdigit()):
                raise UsageError(f"candidate strategy {text!r} is not GROWTH[:SEED] (e.g. random:0, gradient)")

    @classmethod
    def from_sources(cls, cli: Mapping[str, Any], ini: Mapping[str, Any]) -> "CompressSettings":
        """Command-line values that were given win over the ini section's."""
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, value in ini.items():
            name = key.replace("-", "_")
            name = "lambda_" if name == "lambda" else name
            if name not in names:
                raise UsageError(f"[tool.safecompress.compress]: unknown setting {key!r}; known: {', '.join(sorted(n.rstrip('_') for n in names))}")
            values[name] = value
        values.update({k: v for k, v in cli.items() if v is not None and k in names})
        return cls(**values)

    def run_defining(self) -> dict[str, Any]:
        """The settings a resumed run must share with the one it continues."""
        return {k: v for k, v in self.to_dict().items() if k not in ("resume", "overwrite")}

    @property
    def include_patterns(self) -> Optional[tuple[str, ...]]:
        """``include`` for :func:`safecompress.sparse.find_maskable` (None: the default layer types)."""
        return self.include or None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        for name in ("strategies", "include", "exclude"):
            data[name] = list(getattr(self, name))
        return data


# The type each setting must have in [tool.safecompress.compress] (TOML) or from the command line.
FIELD_KINDS: dict[str, str] = {
    "density": "number",
    "epochs": "optional count",
    "candidates": "count",
    "probe_steps": "count",
    "lambda_": "number",
    "updates": "count",
    "stop_fraction": "number",
    "final_checks": "count",
    "distribution": "string",
    "init": "string",
    "strategies": "strings",
    "vary_prune": "boolean",
    "out": "path",
    "resume": "boolean",
    "seed": "count",
    "device": "string",
    "remedies": "boolean",
    "overwrite": "boolean",
    "attempts": "count",
    "stall_gain": "number",
    "ship_from": "string",
    "include": "patterns",
    "exclude": "patterns",
    "embeddings": "boolean",
    "precision": "string",
    "compile": "boolean",
    "budget": "optional number",
}


def _checked(name: str, value: Any, kind: str) -> Any:
    """``value`` as ``kind``, or a usage error naming the setting and the type it needs.

    Booleans are not numbers here (TOML ``density = true`` is a mistake, not 1.0), counts are whole,
    numbers are finite: a NaN limit is a gate that can never fail.
    """
    label = name.rstrip("_").replace("_", "-")
    if kind in ("optional count", "optional number") and value is None:
        return None
    if kind in ("count", "optional count"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "a whole number"
    elif kind in ("number", "optional number"):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        expected = "a finite number"
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif kind == "string":
        if isinstance(value, str) and value:
            return value
        expected = "a string"
    elif kind == "path":
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
        expected = "a path (string)"
    elif kind == "patterns":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
            return tuple(value)
        expected = "a list of glob patterns (strings)"
    else:  # strings
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = "a list of strings"
    raise UsageError(f"compress setting {label!r} must be {expected}, not {value!r}")
