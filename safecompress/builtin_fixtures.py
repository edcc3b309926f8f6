"""Built-in fixtures, provided through the same hook a third-party plugin uses.

``model``      the model under test, in eval mode on the session device (model scope);
``dense_model`` its dense parent, when the run has one (else tests asking for it skip);
``device``     the session's torch device;
``data``       the :class:`~safecompress.data.DataSplits` named by ``[tool.safecompress] data``
               (a conftest ``data`` fixture overrides it);
``record``     metrics and threshold checks of the running test;
``thresholds`` the configured limits (``[tool.safecompress.thresholds]``, ``--threshold``);
``train_recipe`` the training recipe (``[tool.safecompress.recipe]``), for the driver and reference models;
``config``, ``seed``, ``tmp_path``, ``session``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from safecompress.errors import UsageError
from safecompress.hookspecs import hookimpl
from safecompress.runner.record import Record, current_record

if TYPE_CHECKING:
    from safecompress.config import Config
    from safecompress.runner.session import SafetySession

_tmp_counter = itertools.count()


class Thresholds(dict):
    """A dict of limits whose missing keys are a clear usage error, not a bare KeyError."""

    def __missing__(self, name: str) -> float:
        known = ", ".join(sorted(self)) or "none"
        raise UsageError(f"threshold {name!r} is not configured ([tool.safecompress.thresholds] or --threshold {name}=VALUE; configured: {known})")


def config(session: "SafetySession") -> "Config":
    return session.config


def device(session: "SafetySession") -> Any:
    return session.device


def seed(config: "Config") -> int:
    return int(config.getoption("seed", 0))


def thresholds(config: "Config") -> Thresholds:
    return Thresholds(config.thresholds)


def model(session: "SafetySession", device: Any) -> Any:
    if session.model is None:
        raise UsageError("no model under test: pass a model file to `safecompress test MODEL`")
    return session.model.to(device).eval()


def dense_model(session: "SafetySession", device: Any) -> Any:
    """The dense parent of the model under test; tests that need it skip when there is none."""
    if session.dense_model is None:
        from safecompress.runner.outcomes import skip

        skip("no dense parent (give --dense PARENT, or run inside `safecompress compress`)")
    return session.dense_model.to(device).eval()


def dense_parent(session: "SafetySession", device: Any) -> Any:
    """The dense parent, or None when the run has none (an absolute-only gate): for fixtures that
    fall back to absolute limits. Requirements reaching it count as relative (docs/writing-tests.md)."""
    return None if session.dense_model is None else session.dense_model.to(device).eval()


def data(config: "Config", seed: int) -> Any:
    name = config.getoption("data")
    if not name:
        raise UsageError('no data: define a `data` fixture in conftest.py or set [tool.safecompress] data = "fashion-mnist-embedded"')
    from safecompress.data import build_dataset

    options = dict(config.getoption("data_options", {}) or {})
    options.setdefault("seed", seed)
    return build_dataset(str(name), pm=config.pluginmanager, **options)


def train_recipe(config: "Config") -> Any:
    """How the model under test was (or will be) trained: ``[tool.safecompress.recipe]``.

    Reference models for membership attacks and the compression driver both follow it; override
    the fixture in conftest.py for augmentation or anything TOML cannot say.
    """
    from safecompress.training import TrainRecipe

    try:
        return TrainRecipe(**dict(config.ini.get("recipe", {})))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"[tool.safecompress.recipe]: {exc}") from None


def record() -> Record:
    current = current_record()
    if current is None:
        raise UsageError("the record fixture is only available inside a running test")
    return current


def tmp_path(session: "SafetySession") -> Path:
    path = session.tmp_root / f"{next(_tmp_counter):03d}"
    path.mkdir(parents=True)
    return path


@hookimpl
def safecompress_register_fixtures(register: Callable[..., None]) -> None:
    for function, scope in (
        (config, "session"),
        (device, "session"),
        (seed, "session"),
        (thresholds, "session"),
        (data, "session"),
        (train_recipe, "session"),
        (model, "model"),
        (dense_model, "session"),
        (dense_parent, "session"),
        (record, "test"),
        (tmp_path, "test"),
    ):
        register(function, name=function.__name__, scope=scope)
