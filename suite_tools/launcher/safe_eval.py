"""`$(eval ...)` without Python's eval: a whitelist interpreter for small expressions.

Launch files are data: `$(eval ...)` may compare, combine and branch on strings and numbers,
but it can never call functions, touch attributes or import anything.
"""
from __future__ import annotations

import ast
import operator
from typing import Any, Callable

from suite_tools.launcher.errors import LaunchError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_MAX_SEQUENCE = 10_000  # bounds 'x' * n and friends


def _ev(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool,
                                                                  type(None))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_ev(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        value = _ev(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _ev(node.left), _ev(node.right)
        if isinstance(node.op, ast.Mult) and any(isinstance(v, (str, tuple)) for v in
                                                 (left, right)):
            count = right if isinstance(left, (str, tuple)) else left
            if not isinstance(count, int) or count > _MAX_SEQUENCE:
                raise LaunchError("sequence repetition too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BoolOp):
        values = [_ev(v) for v in node.values]
        result = values[0]
        for v in values[1:]:
            result = (result and v) if isinstance(node.op, ast.And) else (result or v)
        return result
    if isinstance(node, ast.Compare):
        left = _ev(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = _ev(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _ev(node.body) if _ev(node.test) else _ev(node.orelse)
    raise LaunchError(f"$(eval): '{type(node).__name__}' is not allowed (only literals, "
                      "arithmetic, comparisons, and/or/not and 'x if c else y')")


def safe_eval(expression: str) -> str:
    """Evaluate `expression` like launch's PythonExpression (result as str), whitelist only."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise LaunchError(f"$(eval {expression!r}): not a valid expression: {exc.msg}") from None
    try:
        return str(_ev(tree.body))
    except LaunchError as exc:
        raise LaunchError(f"$(eval {expression!r}): {exc}") from None
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError) as exc:
        raise LaunchError(f"$(eval {expression!r}) failed: {exc}") from None
