"""The built-in run protocol: setup fixtures, call the test, tear down, make a report.

Each phase is wrapped so an exception becomes a report, never a crash; only a KeyboardInterrupt
escapes, so the session can stop and still write what it has.
"""

from __future__ import annotations

import contextlib
import random
import zlib
from typing import TYPE_CHECKING, Any, Iterator, Optional

from safecompress.hookspecs import hookimpl
from safecompress.runner import record as record_module
from safecompress.runner.fixtures import FixtureLookupError
from safecompress.runner.outcomes import Failed, Skipped, XFailed
from safecompress.runner.record import Record
from safecompress.runner.reports import CallInfo, TestReport

if TYPE_CHECKING:
    from safecompress.runner.items import TestItem
    from safecompress.runner.session import SafetySession

_SKIP_TYPES: tuple[type[BaseException], ...] = (Skipped,)
try:  # pytest.skip() inside a safety test means the same thing here
    from _pytest.outcomes import Skipped as _PytestSkipped
    from _pytest.outcomes import XFailed as _PytestXFailed

    _SKIP_TYPES = (Skipped, _PytestSkipped)
    _XFAIL_TYPES: tuple[type[BaseException], ...] = (XFailed, _PytestXFailed)
except ImportError:  # pragma: no cover - pytest is a dependency
    _XFAIL_TYPES = (XFailed,)


def seed_everything(seed: int) -> None:
    """Same seed, same result: every test starts from a seed derived from the run seed and its id."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run a test on its own seed and put every global random stream back afterwards: judging a
    model inside training must neither reset nor advance the stream training draws from (dropout,
    an adversary's batches), or every judgement would restart training's randomness from a fixed
    state. Python's, NumPy's and torch's CPU and CUDA generators are restored."""
    import numpy as np
    import torch

    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _static_skip(item: "TestItem") -> Optional[str]:
    for mark in item.marks:
        if mark.name == "skip":
            return mark.kwargs.get("reason", "") or "unconditional skip"
        if mark.name == "skipif" and mark.args and mark.args[0]:
            return mark.kwargs.get("reason", "") or "condition true"
    return None


class _Run:
    """State of one test run shared by its phases."""

    def __init__(self, item: "TestItem", session: "SafetySession") -> None:
        self.item = item
        self.session = session
        self.record = Record()
        self.kwargs: dict[str, Any] = {}

    def setup(self) -> None:
        reason = _static_skip(self.item)
        if reason is not None:
            raise Skipped(reason)
        for name in self.item.argnames:
            self.kwargs[name] = self.session.fixtures.get_value(name, self.item.relpath)
        self.kwargs.update(self.item.params)

    def call(self) -> None:
        self.item.function(**self.kwargs)

    def teardown(self) -> None:
        errors = self.session.fixtures.teardown("test")
        if errors:
            raise errors[0]


@hookimpl(trylast=True)
def safecompress_runtest(item: "TestItem", session: "SafetySession") -> TestReport:
    with preserved_random_state():
        seed_everything(int(session.config.getoption("seed", 0)) + zlib.crc32(item.nodeid.encode()))
        report = _run_protocol(item, session)
    if item.role == "target" and report.outcome == "failed":
        report.outcome = "missed"
        report.message = f"steering target missed (never makes the run red by itself): {report.message}"
    return report


def _run_protocol(item: "TestItem", session: "SafetySession") -> TestReport:
    run = _Run(item, session)
    token = record_module.activate(run.record)
    try:
        calls = [CallInfo.from_call(run.setup, "setup", reraise=(KeyboardInterrupt,))]
        if calls[0].excinfo is None:
            calls.append(CallInfo.from_call(run.call, "call", reraise=(KeyboardInterrupt,)))
    finally:
        record_module.deactivate(token)
        calls_teardown = CallInfo.from_call(run.teardown, "teardown", reraise=(KeyboardInterrupt,))
    calls.append(calls_teardown)
    report = None
    for call in calls:
        report = session.config.pluginmanager.hook.safecompress_runtest_makereport(item=item, call=call)
        if report is not None and report.outcome != "passed":
            break
    assert report is not None
    report.duration = sum(c.duration for c in calls)
    report.metrics = run.record.metrics
    report.checks = run.record.checks
    report.info = run.record.info
    report.model_label = session.model_label
    if report.outcome == "passed" and run.record.failures():
        failed = run.record.failures()
        report.outcome, report.when = "failed", "call"
        report.message = "; ".join(c.describe() for c in failed)
        if item.get_mark("xfail"):
            report.outcome = "xfailed"
    elif report.outcome == "passed" and item.get_mark("xfail"):
        strict = item.get_mark("xfail").kwargs.get("strict", False)  # type: ignore[union-attr]
        report.outcome = "failed" if strict else "xpassed"
        report.message = "[XPASS(strict)] " if strict else "unexpectedly passed"
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@hookimpl(trylast=True)
def safecompress_runtest_makereport(item: "TestItem", call: CallInfo) -> TestReport:
    ladder = item.remedy_ladder
    report = TestReport(
        nodeid=item.nodeid,
        outcome="passed",
        when=call.when,
        cost=item.cost,
        remedy=ladder[0][0] if ladder else None,
        remedy_options=ladder[0][1] if ladder else {},
        fallback_remedies=[[name, options] for name, options in ladder[1:]],
        utility_metric=item.utility_metric,
        severity=item.severity,
        markers=sorted(item.marker_names()),
        role=item.role,
        serves=item.serves,
    )
    exc = call.excinfo
    if exc is None:
        return report
    xfail = item.get_mark("xfail")
    if isinstance(exc, _SKIP_TYPES):
        report.outcome, report.message = "skipped", str(getattr(exc, "reason", "") or getattr(exc, "msg", "") or exc)
    elif isinstance(exc, _XFAIL_TYPES):
        report.outcome, report.message = "xfailed", str(getattr(exc, "reason", "") or exc)
    elif call.when == "call" and isinstance(exc, (AssertionError, Failed)):
        report.outcome = "xfailed" if xfail else "failed"
        report.message = str(exc).strip() or "assertion failed"
        report.longrepr = call.traceback
    elif call.when == "call" and xfail:
        report.outcome, report.message = "xfailed", _first_line(exc)
    else:
        report.outcome = "error"
        where = {"setup": "error in setup", "teardown": "error in teardown", "call": "the test raised"}[call.when]
        detail = str(exc) if isinstance(exc, FixtureLookupError) else _first_line(exc)
        report.message = f"{where}: {detail}"
        report.longrepr = call.traceback
    return report
