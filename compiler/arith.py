"""Exact arithmetic in value context: numbers, params and symbolic dims.

`compute` is what `+ - * / // % **` mean inside arguments and shapes: Python's numbers,
and for symbolic dims the exact polynomial arithmetic of dims.py (a `/` on dims must
divide exactly). Every failure is an ElaborationError at the expression.
"""

from __future__ import annotations

from typing import Any

from .dims import exact_div, format_dim, is_sym
from .errors import ElaborationError, Loc

MAX_EXPONENT = 64


def describe_value(v: Any, article: str = "the ") -> str:
    """A value as messages name it: "the number 3.5", "the string 'same'"."""
    if isinstance(v, bool):
        return f"{article}boolean {str(v).lower()}"
    if isinstance(v, int | float):
        return f"{article}number {v!r}"
    if isinstance(v, str):
        return f"{article}string '{v}'"
    if isinstance(v, tuple):
        return "a list"
    if is_sym(v):
        return f"{article}symbolic dim {format_dim(v)}"
    return "a value"


def compute(op: str, a: Any, b: Any, loc: Loc) -> Any:
    for v in (a, b):
        if isinstance(v, bool) or not (isinstance(v, int | float) or is_sym(v)):
            raise ElaborationError(f"cannot compute with {describe_value(v)} ('{op}')", loc)
    symbolic = is_sym(a) or is_sym(b)
    if symbolic and (isinstance(a, float) or isinstance(b, float)):
        raise ElaborationError("symbolic dims take integer arithmetic only", loc)
    try:
        return _OPS[op](a, b, symbolic, loc)
    except ZeroDivisionError:
        raise ElaborationError("division by zero", loc) from None
    except (TypeError, ValueError, OverflowError) as err:
        raise ElaborationError(f"cannot compute '{op}' here: {err}", loc) from None


def _divide(a: Any, b: Any, symbolic: bool, loc: Loc) -> Any:
    if not symbolic:
        return a / b
    q = exact_div(a, b)
    if q is None:
        raise ElaborationError(
            f"{format_dim(a)} / {format_dim(b)} is not exact",
            loc,
            "use // for floor division of dims",
        )
    return q


def _power(a: Any, b: Any, symbolic: bool, loc: Loc) -> Any:
    if symbolic and not (isinstance(b, int) and b >= 0):
        raise ElaborationError("a dim's power must be an integer >= 0", loc)
    if abs(b) > MAX_EXPONENT or (isinstance(a, int) and abs(a) > 2**20 and b > 4):
        raise ElaborationError(f"the power {b} is too large", loc)
    return a**b


_OPS = {
    "+": lambda a, b, s, loc: a + b,
    "-": lambda a, b, s, loc: a - b,
    "*": lambda a, b, s, loc: a * b,
    "/": _divide,
    "//": lambda a, b, s, loc: a // b,
    "%": lambda a, b, s, loc: a % b,
    "**": _power,
}
