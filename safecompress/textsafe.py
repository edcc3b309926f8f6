"""Text from outside (file names, test messages, metadata) made safe to print or to put in XML.

A file name may hold a newline followed by ``::error title=...::`` (a GitHub Actions workflow
command), an ESC sequence that rewrites the terminal, or ``[/bold]`` that rich would parse as
markup; a ``\\x01`` makes JUnit XML invalid. Every place that shows such text goes through here.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls (newline and tab included: a one-line message stays one line), DEL, C1 controls,
# the Unicode line/paragraph separators that some terminals and log viewers break lines on, and
# lone surrogates (from a file's bytes decoded with surrogateescape), which no UTF-8 stream can write.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The Markdown syntax text from outside could abuse: table cells (|), code spans (`), links and
# images ([ ]), HTML and autolinks (<), and the backslash that escapes them. Emphasis and ">" are
# left alone: harmless inside a line.
_MARKDOWN = re.compile(r"([\\`\[\]<|])")
# Characters XML 1.0 cannot carry at all, not even escaped.
_XML_ILLEGAL = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: object) -> str:
    """``text`` on one line with every control character written as an escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape_control, str(text))


def printable_lines(text: object) -> str:
    """:func:`printable` line by line: a traceback keeps its lines, each free of control characters,
    and a line that would start a CI workflow command (``::error ...``, from a multi-line exception
    message) starts with a backslash instead."""
    lines = (printable(line) for line in str(text).splitlines())
    return "\n".join("\\" + line if line.lstrip().startswith("::") else line for line in lines)


def markdown_safe(text: object) -> str:
    """:func:`printable`, then with Markdown's syntax characters escaped: text from a file name, a
    test message or a metric name renders as itself in a job summary, never as markup or HTML."""
    return _MARKDOWN.sub(r"\\\1", printable(text))


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span: one line, no backtick to end the span early, and ``\\|``
    so a table cell stays one cell (GitHub reads that escape inside code spans too)."""
    return "`" + printable(text).replace("`", "'").replace("|", "\\|") + "`"


def markup_safe(text: object) -> str:
    """:func:`printable`, then escaped for rich markup: user text inside a styled line."""
    return escape(printable(text))


def xml_safe(text: object) -> str:
    """``text`` without the characters XML 1.0 forbids (ElementTree would write them raw)."""
    return _XML_ILLEGAL.sub("", str(text))


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type's name when it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def one_line(exc: BaseException, limit: int = 400) -> str:
    """:func:`first_line`, cut to ``limit`` characters: errors end in one line, not a traceback."""
    text = first_line(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."
