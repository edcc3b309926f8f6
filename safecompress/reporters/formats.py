"""Report writers: JSON (versioned schema, docs/report-schema.md), JUnit XML, Markdown."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from safecompress.fsutil import atomic_write_text, json_safe
from safecompress.runner.reports import SessionResult, TestReport
from safecompress.textsafe import markdown_code, markdown_safe, xml_safe


def write_json(result: SessionResult, path: Path) -> None:
    atomic_write_text(path, json.dumps(json_safe(result.to_dict()), indent=2, default=str) + "\n")


def _format_number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clean_xml(element: ET.Element) -> None:
    """Strip characters XML 1.0 cannot carry from every attribute and text (ElementTree writes them
    raw, and one ``\x01`` in a file name makes the whole report unreadable to CI)."""
    for node in element.iter():
        node.attrib = {key: xml_safe(value) for key, value in node.attrib.items()}
        if node.text:
            node.text = xml_safe(node.text)


def write_junitxml(result: SessionResult, path: Path) -> None:
    counts = result.counts()
    suite = ET.Element(
        "testsuite",
        name="safecompress",
        tests=str(len(result.reports)),
        failures=str(counts["failed"]),
        errors=str(counts["error"] + len(result.collection_errors)),
        skipped=str(counts["skipped"] + counts["xfailed"]),
        time=f"{result.duration:.3f}",
        timestamp=datetime.fromtimestamp(result.started, timezone.utc).astimezone().isoformat(),  # ISO-8601, as pytest writes it
    )
    for report in result.reports:
        file_part, _, name = report.nodeid.partition("::")
        case = ET.SubElement(suite, "testcase", classname=file_part.removesuffix(".py").replace("/", "."), name=name, time=f"{report.duration:.3f}")
        properties = ET.SubElement(case, "properties")
        for key, value in report.metrics.items():
            ET.SubElement(properties, "property", name=key, value=_format_number(value))
        for check in report.checks:
            ET.SubElement(properties, "property", name=f"{check.name}.margin", value=_format_number(check.margin))
        for check in report.checks:
            ET.SubElement(properties, "property", name=f"{check.name}.limit", value=f"{check.op} {_format_number(check.limit)} ({check.policy})")
        for key in ("cost", "evidence", "role", "serves", "remedy", "model_label"):
            value = getattr(report, key)
            if value:
                ET.SubElement(properties, "property", name=key.replace("_label", ""), value=str(value))
        if report.outcome == "missed":  # a steering target: reported, never a CI failure
            ET.SubElement(properties, "property", name="target", value="missed")
            ET.SubElement(case, "system-out").text = report.message
        if report.outcome == "failed":
            ET.SubElement(case, "failure", message=report.message).text = report.longrepr or report.message
        elif report.outcome == "error":
            ET.SubElement(case, "error", message=report.message).text = report.longrepr or report.message
        elif report.outcome in ("skipped", "xfailed"):
            ET.SubElement(case, "skipped", message=report.message or report.outcome)
    for error in result.collection_errors:
        case = ET.SubElement(suite, "testcase", classname="collection", name="collect")
        ET.SubElement(case, "error", message=error).text = error
    root = ET.Element("testsuites")
    root.append(suite)
    _clean_xml(root)
    ET.indent(root)
    atomic_write_text(path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️", "xfailed": "➖", "xpassed": "⚠️", "missed": "🎯"}


def key_metrics(report: TestReport, limit: int = 4) -> str:
    """The numbers worth a glance: checked values with their limits first, then other metrics."""
    parts = [f"{c.name}={c.value:.4g} ({c.op}{c.limit:.4g}, margin {c.margin:+.3g})" for c in report.checks]
    checked = {c.name for c in report.checks}
    parts += [f"{k}={v:.4g}" for k, v in report.metrics.items() if k not in checked]
    return ", ".join(parts[:limit])


def render_markdown(result: SessionResult) -> str:
    """The job-summary table; every piece of text from outside (the model's file name, test ids,
    metric names, messages) is a code span or :func:`markdown_safe`: one line, no markup, no HTML."""
    model = markdown_code(result.model.get("label") or "model")
    lines = [f"## SafeCompress safety tests: {model}", "", f"**{result.summary_line()}** (exit code {result.exitstatus})", ""]
    lines += ["| | test | outcome | role | evidence | metrics | message |", "|---|---|---|---|---|---|---|"]
    for report in result.reports:
        message = markdown_safe((report.message.splitlines() or [""])[0][:200])
        role = report.role if report.serves is None else f"target for {report.serves}"
        lines.append(
            f"| {_ICONS.get(report.outcome, '')} | {markdown_code(report.nodeid)} | {report.outcome} | {markdown_safe(role)} | {report.evidence} | {markdown_safe(key_metrics(report))} | {message} |"
        )
    for error in result.collection_errors:
        lines.append(f"| 💥 | collection | error | | | | {markdown_safe(error)} |")
    return "\n".join(lines) + "\n"


def write_markdown(result: SessionResult, path: Path) -> None:
    atomic_write_text(path, render_markdown(result))
