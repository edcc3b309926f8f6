"""Text from outside (file names, test messages, metadata) made safe to print or to put in XML.

A file name may hold a newline followed by ``::error title=...::`` (a GitHub Actions workflow
command), an ESC sequence that rewrites the terminal, or ``[/bold]`` that rich would parse as
markup; a ``\\x01`` makes JUnit XML invalid. Every place that shows such text goes through here.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls (newline and tab included: a one-line message stays one line), DEL, C1 controls,
# and the Unicode line/paragraph separators that some terminals and log viewers break lines on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Characters XML 1.0 cannot carry at all, not even escaped.
_XML_ILLEGAL = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: object) -> str:
    """``text`` on one line with every control character written as an escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape_control, str(text))


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
