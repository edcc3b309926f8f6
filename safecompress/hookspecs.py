"""The plugin contract. Every hook is a documented function; its parameter names are the API.

Built-in features (the collector, the fixtures, the model loaders, the reporters, the attacks, the
remedies) implement these hooks exactly as third-party plugins do. A plugin is any object or module
with functions decorated by :data:`hookimpl`, registered through the ``safecompress`` entry-point
group or written into a ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import pluggy

if TYPE_CHECKING:
    import argparse

    from safecompress.config import Config
    from safecompress.runner.items import TestItem
    from safecompress.runner.reports import CallInfo, TestReport
    from safecompress.runner.session import SafetySession

PROJECT = "safecompress"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- configuration -----------------------------------------------------------------------------
@hookspec
def safecompress_addoption(parser: "argparse.ArgumentParser", command: str) -> None:
    """Add command-line options to ``command`` (``test``, ``compress``, ``audit``...).

    Values end up in ``config.option``. Plugins only (the entry-point group): options are parsed
    before conftests load, so a conftest implementing this hook is refused rather than ignored.
    """


@hookspec
def safecompress_configure(config: "Config") -> None:
    """Called once options and ``pyproject.toml`` are read, before collection. Register helpers here."""


# --- registries (register callbacks, as in llm and eggsample) ----------------------------------
@hookspec
def safecompress_register_fixtures(register: Callable[..., None]) -> None:
    """Provide fixtures: ``register(function, name=None, scope="test")``.

    Plugin fixtures rank below conftest fixtures, which rank below nearer conftest fixtures.
    """


@hookspec
def safecompress_register_attacks(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Provide membership attacks: ``register(name, attack)`` where ``attack(inputs, **options)``
    returns an :class:`~safecompress.attacks.AttackResults`."""


@hookspec
def safecompress_register_remedies(register: Callable[[str, Any], None]) -> None:
    """Provide training-time defenses a failing test can switch on: ``register(name, remedy_factory)``.

    ``remedy_factory(context: RemedyContext)`` returns an object with ``name``, ``base_weight``,
    ``max_weight``, ``loss(model, inputs, logits, labels)``, ``state_dict()``/``load_state_dict()``
    and optionally ``lr_scale(weight) -> float`` (the learning rate is multiplied by it while the
    remedy is on); see :mod:`safecompress.remedies`. The factory may declare
    ``step_cost(options) -> float`` (the extra work of a training step while the remedy is on, as a
    fraction of a plain step); ``--budget`` counts with it, and leaves out a remedy without it.
    """


@hookspec
def safecompress_register_reporters(register: Callable[[str, Callable[..., None]], None]) -> None:
    """Provide report writers: ``register(name, write)`` with ``write(result, path)``.

    ``result`` is a :class:`~safecompress.runner.reports.SessionResult`; ``--report NAME=PATH``
    selects writers; ``--json``, ``--junitxml`` and ``--report-md`` are shorthands for built-ins.
    """


@hookspec
def safecompress_register_datasets(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Provide data builders: ``register(name, build)`` where ``build(seed=..., **kw)`` returns
    :class:`~safecompress.data.DataSplits`. ``[tool.safecompress] data = NAME`` selects one."""


@hookspec
def safecompress_register_growth_rules(register: Callable[[str, Any], None]) -> None:
    """Provide regrowth rules for topology updates: ``register(name, rule)`` with ``rule`` a
    :class:`~safecompress.sparse.GrowthRule` (``score(inputs) -> tensor`` and the statistic it
    ``needs``). Candidate strategies (``[tool.safecompress.compress] strategies``) name them."""


@hookspec
def safecompress_register_models(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Provide model factories that a sparse artifact may name: ``register(name, factory)``.

    An artifact records ``arch`` and JSON ``arch_kwargs``; on load the name is looked up in this
    registry only (plus ``torchvision:NAME``), and the arguments must be JSON scalars that
    ``factory``'s signature names. A file can therefore never choose other code to run; see
    docs/security.md.
    """


@hookspec(firstresult=True)
def safecompress_load_model(path: Path, options: dict[str, Any]) -> Optional[Any]:
    """Load the model at ``path``, or return None to let the next loader try.

    ``options`` holds ``arch``, ``num_classes``, ``trust_pickle``, ``trust_remote_code``,
    ``trust_torchscript``, ``factory`` and ``architectures`` (the ``safecompress_register_models`` registry). Raise
    :class:`~safecompress.errors.UsageError` for a file this loader recognises but cannot use.
    """


# --- collection ---------------------------------------------------------------------------------
@hookspec
def safecompress_collect_file(path: Path, session: "SafetySession") -> Optional[Sequence["TestItem"]]:
    """Return the test items in ``path`` (a file under the requested paths), or None to pass."""


@hookspec
def safecompress_collection_modifyitems(session: "SafetySession", config: "Config", items: list["TestItem"]) -> None:
    """Filter or reorder ``items`` in place (``-k``, ``-m`` and the cost filter are built on this)."""


# --- running ------------------------------------------------------------------------------------
@hookspec
def safecompress_sessionstart(session: "SafetySession") -> None:
    """The session is set up (plugins, configuration) and about to collect."""


@hookspec(firstresult=True)
def safecompress_runtest(item: "TestItem", session: "SafetySession") -> Optional["TestReport"]:
    """Run one test against the session's current model and return its report.

    Wrap it (``hookwrapper=True``/``wrapper=True``) to time, retry or trace tests.
    """


@hookspec(firstresult=True)
def safecompress_runtest_makereport(item: "TestItem", call: "CallInfo") -> Optional["TestReport"]:
    """Turn the outcome of a test's setup/call/teardown into a serialisable report."""


@hookspec
def safecompress_runtest_logreport(report: "TestReport") -> None:
    """A report is ready: reporters show or store it."""


@hookspec
def safecompress_sessionfinish(session: "SafetySession", exitstatus: int) -> None:
    """All tests for the last model ran; ``exitstatus`` is the pytest-style code."""


@hookspec
def safecompress_terminal_summary(session: "SafetySession", console: Any) -> None:
    """Add sections to the end-of-run terminal summary (``console`` is a rich Console)."""


# --- the compression driver ---------------------------------------------------------------------
@hookspec(firstresult=True)
def safecompress_select_candidate(candidates: Sequence[Any], config: "Config") -> Optional[Any]:
    """Pick the candidate mask that survives a topology update; see METHOD.md §3.4.

    Each candidate carries its safety-test reports and metrics; return the winner. The driver also
    asks it, in the final phase, to choose between a new checkpoint and the best earlier one (two
    candidates, the newer first, ``mask`` None): the checkpoint it keeps last ships.
    """
