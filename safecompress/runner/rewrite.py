"""Graded asserts: ``assert auc <= 0.55`` in a safety test records a check with a signed margin.

Test modules are compiled with one AST change: an ``assert`` whose test is a single ``<``, ``<=``,
``>`` or ``>=`` comparison becomes a call to :func:`compare`, which records the check on the running
test's ``record`` (named after the source of the measured side) and raises ``AssertionError`` on
failure. The driver can then rank candidate models by how far each is from passing, exactly as for
``record.at_most``. Other asserts are left alone.
"""

from __future__ import annotations

import ast
import numbers
from typing import Any, Callable, Optional

from safecompress.runner.record import _OPS, current_record

HELPER_NAME = "@safecompress_compare"
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_AST_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _is_number(value: Any) -> bool:
    if hasattr(value, "numel") and hasattr(value, "item"):
        try:
            return value.numel() == 1
        except TypeError:
            return False
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def compare(left: Any, op: str, right: Any, left_src: str, right_src: str, message: Optional[Callable[[], Any]]) -> None:
    """Evaluate and record ``left op right`` (the constant side is the limit), raising on failure."""
    passed = bool(_OPS[op](left, right))
    record = current_record()
    if record is not None and _is_number(left) and _is_number(right):
        name, value, limit, shown_op = left_src, left, right, op
        if _is_constant_src(left_src) and not _is_constant_src(right_src):
            name, value, limit, shown_op = right_src, right, left, _FLIP[op]
        record.compare(name, value, shown_op, limit)
    if not passed:
        detail = f"{left_src} {op} {right_src} failed: {left!r} {op} {right!r} is false"
        if message is not None:
            detail = f"{message()}\n{detail}"
        raise AssertionError(detail)


def _is_constant_src(source: str) -> bool:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant)


class _AssertRewriter(ast.NodeTransformer):
    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _AST_OPS):
            return node
        left, right = test.left, test.comparators[0]
        message = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=node.msg) if node.msg is not None else ast.Constant(None)
        call = ast.Call(
            func=ast.Name(HELPER_NAME, ast.Load()),
            args=[
                left,
                ast.Constant(_AST_OPS[type(test.ops[0])]),
                right,
                ast.Constant(ast.get_source_segment(self.source, left) or "left"),
                ast.Constant(ast.get_source_segment(self.source, right) or "right"),
                message,
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Expr(call), node)


def compile_test_module(source: str, filename: str) -> Any:
    """Compile ``source`` with graded asserts; the module namespace must hold :data:`HELPER_NAME`."""
    tree = ast.parse(source, filename)
    tree = ast.fix_missing_locations(_AssertRewriter(source).visit(tree))
    return compile(tree, filename, "exec", dont_inherit=True)
