"""A safety session: tests collected once, run against one model or against many in turn.

``safecompress test`` runs one model; the compression driver keeps one session for a whole training
run and calls :meth:`SafetySession.run` on every candidate, so modules are imported once and
session-scoped fixtures (data splits, reference models) are built once, while model-scoped fixtures
are rebuilt per candidate. :func:`wrap_session` maps every way a run can end to pytest's exit codes.
"""

from __future__ import annotations

import logging
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from safecompress.config import Config
from safecompress.errors import CollectionError, ExitCode, SafeCompressError, UsageError
from safecompress.plugins import check_hooks
from safecompress.runner.collect import find_test_files
from safecompress.runner.conftests import ConftestLoader, register_plugin_fixtures
from safecompress.runner.context import SessionDefaults
from safecompress.runner.fixtures import FixtureLookupError, FixtureManager, relpath
from safecompress.runner.items import TestItem
from safecompress.runner.reports import SessionResult, TestReport
from safecompress.textsafe import first_line, printable, printable_lines

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Stop the session early (``-x`` after a failure); not an error."""


class SafetySession:
    def __init__(self, config: Config, conftests: Optional[ConftestLoader] = None) -> None:
        self.config = config
        self.pm = config.pluginmanager
        self.fixtures = FixtureManager()
        self.conftests = conftests or ConftestLoader(self.pm, config.rootdir)
        self.items: list[TestItem] = []
        self.deselected: list[TestItem] = []
        self.collection_errors: list[str] = []
        self.reports: list[TestReport] = []
        self.model: Any = None
        self.dense_model: Any = None  # the dense parent, when a run compares against it
        self.model_label = ""
        self.model_info: dict[str, Any] = {}
        self.device: Any = None
        self.started = time.time()
        self.defaults = SessionDefaults(self)  # what attacks called inside tests default to; warnings given once
        self.shouldstop: str = ""
        self._collected = False
        self._tmpdir = tempfile.TemporaryDirectory(prefix="safecompress-")
        self.tmp_root = Path(self._tmpdir.name)

    # --- set-up ----------------------------------------------------------------------------------
    def test_paths(self) -> list[Path]:
        raw = self.config.getoption("paths") or self.config.getoption("tests")
        if not raw:  # the default folder is optional: commands like audit run without tests
            default = self.config.rootdir / "safety_tests"
            return [default] if default.exists() else []
        if isinstance(raw, str):
            raw = [raw]
        base = Path.cwd() if getattr(self.config.option, "paths", None) else self.config.rootdir
        paths = [(base / p) if not Path(p).is_absolute() else Path(p) for p in raw]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise UsageError(f"file or folder not found: {', '.join(missing)}")
        return paths

    def start(self) -> None:
        """Load conftests, register fixtures (built-in, plugin, conftest) and tell plugins we started."""
        paths = self.test_paths()
        self.conftests.load(self.config.rootdir / "conftest.py")
        self.conftests.load_for(paths)
        check_hooks(self.pm)  # built-ins, entry points and conftests are all registered now
        self.pm.hook.safecompress_configure(config=self.config)
        from safecompress.inference import resolve_device

        self.device = resolve_device(self.config.getoption("device", "auto"))
        self.fixtures.add(lambda: self, name="session", scope="session", rank=0)
        register_plugin_fixtures(self.pm, self.fixtures)
        self.conftests.parse_fixtures(self.fixtures)
        self.pm.hook.safecompress_sessionstart(session=self)

    def collect(self) -> list[TestItem]:
        """Collect once per session; later calls return the same items."""
        if self._collected:
            return self.items
        self._collected = True
        items: list[TestItem] = []
        for path in find_test_files(self.test_paths()):
            try:
                for found in self.pm.hook.safecompress_collect_file(path=path, session=self):
                    items.extend(found or [])
            except (CollectionError, UsageError) as exc:
                self.collection_errors.append(str(exc))
        for item in items:  # fixtures defined in the test module itself are visible only there
            for module in item.fixture_namespaces():
                self.fixtures.parse_namespace_once(module, baseid=relpath(item.path, self.config.rootdir), rank=3)
        self.pm.hook.safecompress_collection_modifyitems(session=self, config=self.config, items=items)
        self.items = items
        return items

    def role_notes(self, items: Optional[Sequence[TestItem]] = None) -> list[str]:
        """One line per collected test whose role is ambiguous: a ``cheap`` test (in-loop evidence)
        that declares neither ``mark.target`` nor ``mark.requirement`` is judged as a requirement,
        as before roles existed, which gates on steering-grade evidence."""
        return [
            f"{item.nodeid} runs in the loop (cost cheap) and declares no role: it is judged as a requirement on in-loop evidence; "
            "mark it @safecompress.mark.target(serves=...) to only steer, or @safecompress.mark.requirement to keep gating on it"
            for item in (self.items if items is None else items)
            if item.cost == "cheap" and not item.role_declared
        ]

    def fixture_value(self, name: str) -> Any:
        """A session-scoped fixture for a command (``data``, ``train_recipe``, ``model_factory``), seen
        from the first test file; user code failing in it is a usage error naming the fixture."""
        lookup = self.items[0].relpath if self.items else ""
        try:
            return self.fixtures.get_value(name, lookup, "session")
        except (UsageError, KeyboardInterrupt):
            raise
        except FixtureLookupError as exc:
            raise UsageError(str(exc)) from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's fixture code, not ours
            raise UsageError(f"the {name} fixture raised {type(exc).__name__}: {first_line(exc)}") from None

    def load_model(self, path: Path, shaped_like: Any = None) -> tuple[Any, dict[str, Any]]:
        """The model at ``path`` and what reports say about it, through the loader plugins; a
        ``model_factory`` fixture supplies the architecture when there is one. ``shaped_like`` (a
        loaded model) gives a bare state dict its architecture when neither ``--arch`` nor a factory
        does: a dense parent saved as weights takes the shape of the sparse artifact compressed from it."""
        import copy

        from safecompress.modelio import describe_model, detect_format, load_model

        factory = self.fixture_value("model_factory") if "model_factory" in self.fixtures.names() else None
        weights_only = detect_format(Path(path)) in ("safetensors", "torch-zip", "torch-legacy")
        if factory is None and shaped_like is not None and self.config.getoption("arch") is None and weights_only:
            factory = copy.deepcopy(shaped_like)
        model = load_model(
            path,
            arch=self.config.getoption("arch"),
            num_classes=self.config.getoption("num_classes"),
            # Trust is given on the command line only, never by a file (not even pyproject.toml).
            trust_pickle=bool(getattr(self.config.option, "trust_pickle", False)),
            trust_remote_code=bool(getattr(self.config.option, "trust_remote_code", False)),
            trust_torchscript=bool(getattr(self.config.option, "trust_torchscript", False)),
            factory=factory,
            plugin_manager=self.pm,
        )
        return model, {"path": str(path), **describe_model(model, masked_names(path))}

    def train_recipe(self) -> Any:
        """The ``train_recipe`` fixture (``[tool.safecompress.recipe]`` unless a conftest overrides it)."""
        from safecompress.training import TrainRecipe

        recipe = self.fixture_value("train_recipe")
        if not isinstance(recipe, TrainRecipe):
            raise UsageError(f"the train_recipe fixture returned {type(recipe).__name__}, not safecompress.training.TrainRecipe")
        return recipe

    # --- running ---------------------------------------------------------------------------------
    def set_model(self, model: Any, label: str = "model", info: Optional[dict[str, Any]] = None) -> None:
        """Make ``model`` the model under test; model-scoped fixtures are torn down and rebuilt."""
        self._report_teardown_errors(self.fixtures.teardown("model"), "model")
        self.model = model
        self.model_label = label
        self.model_info = dict(info or {})

    def run(self, items: Optional[Sequence[TestItem]] = None, select: Optional[Callable[[TestItem], bool]] = None) -> list[TestReport]:
        """Run ``items`` (default: all collected) against the current model; returns their reports."""
        from safecompress.runner.context import session_defaults

        chosen = [i for i in (items if items is not None else self.items) if select is None or select(i)]
        reports: list[TestReport] = []
        maxfail = 1 if self.config.getoption("exitfirst") else 0
        with session_defaults(self.defaults):  # attacks called by tests default to this session's recipe
            for item in chosen:
                report = self.pm.hook.safecompress_runtest(item=item, session=self)
                reports.append(report)
                self.reports.append(report)
                self.pm.hook.safecompress_runtest_logreport(report=report)
                if maxfail and sum(r.fails_gate for r in reports) >= maxfail:
                    self.shouldstop = "stopping after the first failure (-x)"
                    break
        return reports

    def exitstatus(self) -> ExitCode:
        if self.collection_errors:
            return ExitCode.INTERRUPTED
        if not self.items and not self.reports:
            return ExitCode.NO_TESTS_COLLECTED
        if any(r.fails_gate for r in self.reports):
            return ExitCode.TESTS_FAILED
        return ExitCode.OK

    def result(self, exitstatus: int) -> SessionResult:
        return SessionResult(
            reports=list(self.reports),
            exitstatus=int(exitstatus),
            duration=time.time() - self.started,
            model={"label": self.model_label, **self.model_info},
            settings={
                "seed": self.config.getoption("seed", 0),
                "device": str(self.device) if self.device is not None else None,
                "paths": [relpath(p, self.config.rootdir) or "." for p in self.test_paths()],
                "keyword": self.config.getoption("keyword"),
                "markexpr": self.config.getoption("markexpr"),
                "thresholds": self.config.thresholds,
            },
            collection_errors=list(self.collection_errors),
            started=self.started,
        )

    def _report_teardown_errors(self, errors: Sequence[BaseException], scope: str) -> bool:
        """A fixture whose teardown raised is an error, as in pytest: it is reported against the
        last test that ran (``when="teardown"``), so the run ends red and reporters show it."""
        for error in errors:
            last = self.reports[-1] if self.reports else None
            report = TestReport(
                nodeid=last.nodeid if last else f"<{scope}-scoped fixtures>",
                outcome="error",
                when="teardown",
                message=f"error in teardown of a {scope}-scoped fixture: {first_line(error)}",
                longrepr="".join(traceback.format_exception(error)),
                cost=last.cost if last else "cheap",
                model_label=self.model_label,
            )
            self.reports.append(report)
            self.pm.hook.safecompress_runtest_logreport(report=report)
        return bool(errors)

    def teardown_fixtures(self) -> bool:
        """Finish every fixture (session scope included); teardown errors become error reports.
        Returns whether there were any."""
        return self._report_teardown_errors(self.fixtures.teardown_all(), "session")

    def close(self) -> list[BaseException]:
        errors = self.fixtures.teardown_all()
        self._tmpdir.cleanup()
        return errors


def wrap_session(config: Config, body: Callable[[SafetySession], Optional[int]], console: Any = None) -> int:
    """Start a session, run ``body`` and map the way it ended to an exit code (pytest's discipline).

    Usage errors give 4, an interrupt 2, anything unexpected 3 — each with one line, never a
    traceback unless ``-v`` asked for it. Plugins always see ``sessionfinish``, so reporters write
    what was collected even when a run is interrupted.
    """
    session = SafetySession(config)
    status: int = ExitCode.OK
    started = False
    try:
        session.start()
        started = True
        chosen = body(session)
        teardown_failed = session.teardown_fixtures()
        status = session.exitstatus() if chosen is None else chosen
        if teardown_failed and status == ExitCode.OK:
            status = ExitCode.TESTS_FAILED
    except UsageError as exc:
        status = ExitCode.USAGE_ERROR
        _say(console, f"ERROR: {exc}")
    except KeyboardInterrupt:
        status = ExitCode.INTERRUPTED
        _say(console, "Interrupted: the run was stopped (KeyboardInterrupt); partial results were kept")
    except SafeCompressError as exc:
        status = ExitCode.INTERRUPTED if isinstance(exc, CollectionError) else ExitCode.USAGE_ERROR
        _say(console, f"ERROR: {exc}")
    except SystemExit as exc:  # sys.exit() in a conftest, fixture or factory must not pass a gate
        status = ExitCode.USAGE_ERROR
        _say(console, f"ERROR: user code (a conftest, fixture or --arch factory) called sys.exit({exc.code!r}); the run was stopped")
    except Exception as exc:  # noqa: BLE001 - the whole point: one line, exit 3
        status = ExitCode.INTERNAL_ERROR
        _say(console, f"INTERNAL ERROR: {type(exc).__name__}: {exc}")
        if config.verbosity > 0 and console is not None:
            console.print(printable_lines(traceback.format_exc()), markup=False, highlight=False)
    finally:
        if started:
            try:
                config.pluginmanager.hook.safecompress_sessionfinish(session=session, exitstatus=int(status))
            except UsageError as exc:
                status = ExitCode.USAGE_ERROR
                _say(console, f"ERROR: {exc}")
            except Exception as exc:  # noqa: BLE001
                status = ExitCode.INTERNAL_ERROR
                _say(console, f"INTERNAL ERROR in sessionfinish: {type(exc).__name__}: {exc}")
        for error in session.close():
            log.warning("fixture teardown failed: %s", error)
    return int(status)


def _say(console: Any, text: str) -> None:
    """One line for the user: control characters from file names or user messages are escaped."""
    if console is not None:
        console.print(printable(text), markup=False, highlight=False)
    else:
        log.error(printable(text))


def masked_names(path: Path) -> Optional[list[str]]:
    """The parameters a sparse artifact masked (its density's scope), None for other model files."""
    from safecompress.modelio.formats import detect_format

    if not Path(path).is_file() or detect_format(Path(path)) != "sparse":
        return None
    from safecompress.sparse import read_artifact_metadata

    return sorted(read_artifact_metadata(path)["layers"])
