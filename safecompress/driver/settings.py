"""Settings of one compression run: command line over ``[tool.safecompress.compress]`` over defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional

from safecompress.errors import UsageError

DEFAULT_CANDIDATES = ("random:0", "random:1", "gradient", "momentum")


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

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise UsageError(f"--density must be in (0, 1], got {self.density}")
        if self.candidates < 1:
            raise UsageError(f"--candidates must be ≥ 1, got {self.candidates}")
        if self.probe_steps < 0 or self.updates < 0 or self.final_checks < 0:
            raise UsageError("--probe-steps, --updates and --final-checks must be ≥ 0")
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be ≥ 1, got {self.epochs}")
        if self.lambda_ < 0:
            raise UsageError(f"--lambda must be ≥ 0, got {self.lambda_}")
        self.out = Path(self.out)
        self.strategies = tuple(self.strategies)
        from safecompress.sparse import GROWTH_RULES

        for text in self.strategies:
            growth, _, seed = text.partition(":")
            if growth not in GROWTH_RULES or (seed and not seed.isdigit()):
                raise UsageError(f"unknown candidate strategy {text!r}: use GROWTH[:SEED] with GROWTH one of {', '.join(GROWTH_RULES)}")

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
        try:
            return cls(**values)
        except TypeError as exc:
            raise UsageError(f"bad compress settings: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["strategies"] = list(self.strategies)
        return data
