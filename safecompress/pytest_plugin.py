"""pytest bridge: ``pytest safety_tests --safecompress-model MODEL`` runs the safety tests under pytest.

Inert by design: this module imports nothing heavy and registers nothing unless
``--safecompress-model`` is given, because pytest loads it in every project where safecompress is
installed. When active, test modules are collected by safecompress (same fixtures, same graded
asserts, same outcomes) and each safety test becomes a pytest item, so pytest's JUnit XML, ``-k``,
``-x`` and exit codes apply. Metrics become JUnit properties through ``user_properties``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("safecompress", "safety tests against a model (safecompress)")
    group.addoption("--safecompress-model", metavar="MODEL", help="run the collected tests as safecompress safety tests against MODEL")
    group.addoption("--safecompress-dense", metavar="MODEL", help="the dense parent, for requirements relative to it (default: the one a compressed artifact records)")
    group.addoption("--safecompress-absolute-only", action="store_true", help="gate on absolute limits only (without it, a relative requirement with no parent is an error)")
    group.addoption("--safecompress-arch", metavar="REF", help="architecture for a bare state dict (torchvision:NAME, package.module:factory)")
    group.addoption("--safecompress-num-classes", type=int, metavar="N", help="classes passed to the architecture")
    group.addoption("--safecompress-trust-pickle", action="store_true", help="allow a whole pickled module (runs code: trusted files only)")
    group.addoption("--safecompress-trust-remote-code", action="store_true", help="allow a Hugging Face folder's own code (trusted folders only)")
    group.addoption("--safecompress-trust-torchscript", action="store_true", help="allow a TorchScript archive (its program runs: trusted files only)")
    group.addoption("--safecompress-device", metavar="DEVICE", help="auto, cpu or cuda")
    group.addoption("--safecompress-seed", type=int, metavar="N", help="seed for every test")
    group.addoption("--safecompress-threshold", action="append", metavar="NAME=VALUE", help="set or override a threshold")


MARKERS = (
    "cheap: safecompress cost level: runs on every candidate during compression",
    "validation: safecompress cost level: runs on the checkpoint about to ship, then at the gate",
    "gate: safecompress cost level: runs only at the final gate",
    "cost(level): safecompress test cost",
    "remedy(name): the training-time defense a safecompress test declares",
    "severity(weight): weight of a safecompress test's failure when candidates are ranked",
    "performance: a safecompress task-performance test; while red, steering backs remedies off",
    "target(serves): a safecompress steering target: steers training, reported as met or missed, never fails the run",
    "requirement: a safecompress requirement: what the shipped model must satisfy",
)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("safecompress_model"):
        from safecompress.errors import SafeCompressError

        for line in MARKERS:
            config.addinivalue_line("markers", line)
        try:
            bridge = Bridge(config)
            bridge.ensure_started()  # conftests, options and report targets are checked here
        except SafeCompressError as exc:  # bad configuration: pytest's usage error (exit 4), one line
            from safecompress.textsafe import printable

            raise pytest.UsageError(f"safecompress: {printable(exc)}") from None
        config.pluginmanager.register(bridge, "safecompress-bridge")


class SafetyTestFailure(Exception):
    """Raised from a bridged item so pytest marks it failed, carrying safecompress's message."""


class Bridge:
    """Owns one safecompress session for the whole pytest run (imports happen only here)."""

    def __init__(self, config: pytest.Config) -> None:
        import argparse

        from safecompress.config import config_from_args
        from safecompress.plugins import get_plugin_manager
        from safecompress.runner.session import SafetySession

        option = argparse.Namespace(
            paths=[str(Path(a.split("::")[0])) for a in config.args] or None,
            arch=config.getoption("safecompress_arch"),
            num_classes=config.getoption("safecompress_num_classes"),
            trust_pickle=config.getoption("safecompress_trust_pickle"),
            trust_remote_code=config.getoption("safecompress_trust_remote_code"),
            trust_torchscript=config.getoption("safecompress_trust_torchscript"),
            device=config.getoption("safecompress_device"),
            seed=config.getoption("safecompress_seed"),
            threshold=config.getoption("safecompress_threshold"),
        )
        self.model_path = Path(config.getoption("safecompress_model"))
        dense = config.getoption("safecompress_dense")
        self.dense_path = Path(dense) if dense else None
        self.absolute_only = bool(config.getoption("safecompress_absolute_only"))
        self.pytest_config = config
        self.items: list[Any] = []  # the safety items pytest collected: the gate's requirements are among them
        self.sc_config = config_from_args(option, get_plugin_manager(), "pytest", start=Path(config.invocation_params.dir))
        self.session = SafetySession(self.sc_config)
        self.started = False
        self.model_ready = False

    def ensure_started(self) -> None:
        if not self.started:
            self.session.start()
            self.started = True

    def ensure_model(self) -> None:
        if not self.model_ready:
            from safecompress.driver.gate_record import prepare_gate
            from safecompress.errors import SafeCompressError

            try:
                self.session.items = list(self.items)
                dense, notes = prepare_gate(self.session, self.model_path, self.dense_path, self.absolute_only)
                terminal = self.pytest_config.pluginmanager.get_plugin("terminalreporter")
                for note in notes if terminal is not None else []:
                    terminal.write_line(f"safecompress note: {note}")
                model, info = self.session.load_model(self.model_path)
                if dense is not None:
                    self.session.dense_model, _ = self.session.load_model(dense, shaped_like=model)
            except SafeCompressError as exc:
                from safecompress.textsafe import printable

                pytest.exit(f"safecompress: {printable(exc)}", returncode=pytest.ExitCode.USAGE_ERROR)
            self.session.set_model(model, label=self.model_path.name, info=info)
            self.model_ready = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: Any) -> Optional[pytest.Collector]:
        return SafetyModule.from_parent(parent, path=module_path, bridge=self)

    def pytest_sessionfinish(self) -> None:
        if self.started:
            self.session.close()


class SafetyModule(pytest.File):
    def __init__(self, *, bridge: Bridge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bridge = bridge

    def collect(self) -> Any:
        from safecompress.errors import SafeCompressError
        from safecompress.runner.collect import collect_module
        from safecompress.runner.fixtures import relpath

        self.bridge.ensure_started()
        session = self.bridge.session
        try:
            items = collect_module(self.path, session.config.rootdir)
        except SafeCompressError as exc:
            raise self.CollectError(str(exc)) from None
        for module in (m for item in items for m in item.fixture_namespaces()):
            session.fixtures.parse_namespace_once(module, baseid=relpath(self.path, session.config.rootdir), rank=3)
        for item in items:
            self.bridge.items.append(item)
            yield SafetyItem.from_parent(self, name=item.name, safety_item=item)


class SafetyItem(pytest.Item):
    def __init__(self, *, safety_item: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.safety_item = safety_item
        for mark in safety_item.marks:
            if mark.name not in ("parametrize", "skip", "skipif", "xfail"):
                self.add_marker(mark.name)
        self.add_marker(safety_item.cost)

    def runtest(self) -> None:
        bridge: Bridge = self.parent.bridge  # type: ignore[attr-defined]
        bridge.ensure_model()
        report = bridge.session.pm.hook.safecompress_runtest(item=self.safety_item, session=bridge.session)
        for name, value in report.metrics.items():
            self.user_properties.append((name, value))
        for check in report.checks:
            self.user_properties.append((f"{check.name}.margin", check.margin))
            self.user_properties.append((f"{check.name}.limit", f"{check.op} {check.limit:.6g} ({check.policy})"))
        self.user_properties += [("role", report.role), ("evidence", report.evidence)]
        if report.outcome == "missed":  # a steering target: reported, never a failure
            import warnings

            self.user_properties.append(("target", "missed"))
            warnings.warn(pytest.PytestWarning(f"{self.safety_item.nodeid}: {report.message}"), stacklevel=1)
        if report.outcome == "skipped":
            pytest.skip(report.message)
        if report.outcome == "xfailed":
            pytest.xfail(report.message)
        if report.outcome in ("failed", "error"):
            raise SafetyTestFailure(f"{report.outcome}: {report.message}")

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, SafetyTestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, Optional[int], str]:
        return self.path, None, self.safety_item.nodeid
