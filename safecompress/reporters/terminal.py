"""Terminal reporter: a line per test with its key metrics, then a summary table and pytest's closing line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from safecompress.hookspecs import hookimpl
from safecompress.reporters.formats import key_metrics
from safecompress.runner.reports import TestReport
from safecompress.textsafe import markup_safe, printable_lines

if TYPE_CHECKING:
    from safecompress.runner.session import SafetySession

STYLES = {"passed": "green", "failed": "red", "error": "red bold", "skipped": "yellow", "xfailed": "yellow", "xpassed": "yellow", "missed": "magenta"}


class TerminalReporter:
    def __init__(self, console: Console, verbosity: int = 0) -> None:
        self.console = console
        self.verbosity = verbosity

    @hookimpl
    def safecompress_sessionstart(self, session: "SafetySession") -> None:
        if self.verbosity >= 0:
            self.console.print(f"[bold]safecompress[/bold] session: root {markup_safe(session.config.rootdir)}", highlight=False)

    @hookimpl(trylast=True)
    def safecompress_collection_modifyitems(self, session: "SafetySession", items: list[Any]) -> None:
        if self.verbosity >= 0:
            deselected = f" ({len(session.deselected)} deselected)" if session.deselected else ""
            self.console.print(f"collected {len(items) + len(session.deselected)} items{deselected}", highlight=False)
        for error in session.collection_errors:
            self.console.print(f"[red]ERROR collecting[/red] {markup_safe(error)}", highlight=False)
        for note in session.role_notes(items) if self.verbosity >= 0 else []:
            self.console.print(f"[yellow]note:[/yellow] {markup_safe(note)}", highlight=False)

    @hookimpl
    def safecompress_runtest_logreport(self, report: TestReport) -> None:
        if self.verbosity < 0:
            return
        style = STYLES.get(report.outcome, "")
        label = report.outcome.upper()
        line = f"[{style}]{label:<8}[/{style}] {markup_safe(report.nodeid)}"
        metrics = key_metrics(report)
        if metrics:
            line += f"  [dim]{markup_safe(metrics)}[/dim]"
        self.console.print(line, highlight=False)
        for warning in report.info.get("warnings", []) if self.verbosity >= 0 else []:
            self.console.print(f"         [yellow]{markup_safe(str(warning))}[/yellow]", highlight=False)
        if report.outcome in ("failed", "error", "skipped", "missed") and report.message:
            self.console.print(f"         [{style}]{markup_safe(report.message.splitlines()[0])}[/{style}]", highlight=False)
        if self.verbosity > 0 and report.longrepr:
            self.console.print(printable_lines(report.longrepr), markup=False, highlight=False)

    @hookimpl(trylast=True)
    def safecompress_sessionfinish(self, session: "SafetySession", exitstatus: int) -> None:
        result = session.result(exitstatus)
        if self.verbosity >= 0 and result.reports:
            table = Table(title="safety tests", title_justify="left")
            for column in ("test", "outcome", "role", "evidence", "metrics", "margin"):
                table.add_column(column)
            for report in result.reports:
                margin = report.margin
                table.add_row(
                    markup_safe(report.name),
                    f"[{STYLES.get(report.outcome, '')}]{report.outcome}[/]",
                    markup_safe(report.role if report.serves is None else f"target for {report.serves}"),
                    report.evidence,
                    markup_safe(key_metrics(report, limit=3)),
                    "" if margin is None else f"{margin:+.3g}",
                )
            self.console.print(table)
        session.pm.hook.safecompress_terminal_summary(session=session, console=self.console)
        if session.shouldstop:
            self.console.print(session.shouldstop, highlight=False, markup=False)
        color = "green" if exitstatus == 0 else ("yellow" if exitstatus == 5 else "red")
        self.console.print(f"[{color}]{result.summary_line()}[/{color}]", highlight=False)
