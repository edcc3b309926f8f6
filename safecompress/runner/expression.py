"""The ``-k`` / ``-m`` mini-language: words joined by ``and``, ``or``, ``not`` and parentheses."""

from __future__ import annotations

import re
from typing import Callable

from safecompress.errors import UsageError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def compile_expression(text: str) -> Callable[[Callable[[str], bool]], bool]:
    """Parse once; the result evaluates the expression given a word matcher."""
    tokens = _TOKEN.findall(text)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def parse_or() -> Callable[[Callable[[str], bool]], bool]:
        left = parse_and()
        while peek() == "or":
            take()
            right, prev = parse_and(), left
            left = lambda m, a=prev, b=right: a(m) or b(m)  # noqa: E731
        return left

    def parse_and() -> Callable[[Callable[[str], bool]], bool]:
        left = parse_not()
        while peek() == "and":
            take()
            right, prev = parse_not(), left
            left = lambda m, a=prev, b=right: a(m) and b(m)  # noqa: E731
        return left

    def parse_not() -> Callable[[Callable[[str], bool]], bool]:
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda m: not inner(m)
        return parse_primary()

    def parse_primary() -> Callable[[Callable[[str], bool]], bool]:
        token = peek()
        if token is None:
            raise UsageError(f"bad expression {text!r}: it ends too early")
        take()
        if token == "(":
            inner = parse_or()
            if peek() != ")":
                raise UsageError(f"bad expression {text!r}: missing ')'")
            take()
            return inner
        if token in (")", "and", "or", "not"):
            raise UsageError(f"bad expression {text!r}: unexpected {token!r}")
        return lambda m: m(token)

    if not tokens:
        return lambda m: True
    tree = parse_or()
    if position != len(tokens):
        raise UsageError(f"bad expression {text!r}: unexpected {tokens[position]!r}")
    return tree
