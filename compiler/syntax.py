"""Expression strings to a small typed AST, with every node located in the spec file.

The grammar lives in `schema/expr.lark` (the language definition); this module builds
one LALR parser from it and turns lark's trees and errors into our own types. It is the
only place that knows lark: its exceptions are translated here, once, into
`ExprSyntaxError` located at the file's own line and column.

A caller parses a string with a `locate(offset, length) -> Loc` function that maps a
span inside the string to the file (the YAML loader knows how, quotes and all), so an
AST node's `loc` points into the spec even for `- "dens(128) -> relu"`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import lark

from dlc.schema import grammar_text

from .errors import ExprSyntaxError, Loc

Locate = Callable[[int, int], Loc]


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float
    loc: Loc


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class KwArg:
    name: str
    value: Expr
    loc: Loc  # the keyword's own span


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    loc: Loc  # the whole call
    name_loc: Loc


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    loc: Loc


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / // % **
    left: Expr
    right: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    loc: Loc


@dataclass(frozen=True, slots=True)
class Pipe:
    stages: tuple[Expr, ...]
    loc: Loc


Expr = Num | Str | Name | Call | ListExpr | BinOp | Neg | Pipe


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: Expr | None
    loc: Loc


@dataclass(frozen=True, slots=True)
class Signature:
    """`resblock(c, k=3)`: a block's name and its parameters."""

    name: str
    params: tuple[Parameter, ...]
    loc: Loc


def unparse(e: Expr) -> str:
    """The canonical text of an expression (used in messages and the IR's text form)."""
    match e:
        case Num(value=v):
            return repr(v)
        case Str(value=v):
            return repr(v)
        case Name(id=i):
            return i
        case Call(name=n, args=a, kwargs=k):
            inner = [unparse(x) for x in a] + [f"{kw.name}={unparse(kw.value)}" for kw in k]
            return f"{n}({', '.join(inner)})"
        case ListExpr(items=items):
            return "[" + ", ".join(unparse(x) for x in items) + "]"
        case BinOp(op=op, left=left, right=right):
            return f"({unparse(left)} {op} {unparse(right)})"
        case Neg(operand=o):
            return f"-{unparse(o)}"
        case Pipe(stages=s):
            return " -> ".join(unparse(x) for x in s)
    raise AssertionError(f"not an expression: {e!r}")


_BINOPS = {
    "add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%", "pow": "**",
}  # fmt: skip

# What a person calls lark's terminals in a syntax error.
_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LPAR": "'('",
    "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "PERCENT": "'%'",
    "__ANON_0": "'->'", "__ANON_1": "'//'", "__ANON_2": "'**'", "$END": "the end",
}  # fmt: skip


@cache
def _parser() -> lark.Lark:
    return lark.Lark(
        grammar_text(),
        parser="lalr",
        start=["start", "signature"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


class _Builder:
    """Turns a lark tree into AST nodes, locating each through `locate`."""

    def __init__(self, locate: Locate) -> None:
        self.locate = locate

    def loc(self, item: lark.Tree | lark.Token) -> Loc:
        if isinstance(item, lark.Token):
            start, end = item.start_pos or 0, item.end_pos or 0
        else:
            start, end = item.meta.start_pos, item.meta.end_pos
        return self.locate(start, max(1, end - start))

    def expr(self, t: lark.Tree | lark.Token) -> Expr:
        if isinstance(t, lark.Token):  # pragma: no cover - the grammar wraps every token
            raise AssertionError(f"bare token {t!r}")
        kind = t.data
        if kind == "number":
            return Num(_number(str(t.children[0])), self.loc(t))
        if kind == "string":
            return Str(str(t.children[0])[1:-1], self.loc(t))
        if kind == "name":
            return Name(str(t.children[0]), self.loc(t))
        if kind == "call":
            return self.call(t)
        if kind == "list":
            items = tuple(self.expr(c) for c in t.children if c is not None)
            return ListExpr(items, self.loc(t))
        if kind == "pipe":
            return Pipe(tuple(self.expr(c) for c in t.children), self.loc(t))
        if kind == "neg":
            return Neg(self.expr(t.children[0]), self.loc(t))
        if kind in _BINOPS:
            left, right = (self.expr(c) for c in t.children)
            return BinOp(_BINOPS[kind], left, right, self.loc(t))
        raise AssertionError(f"unknown tree {kind}")

    def call(self, t: lark.Tree) -> Call:
        name_tok, arguments = t.children
        args: list[Expr] = []
        kwargs: list[KwArg] = []
        for a in arguments.children if arguments is not None else ():
            if a is None:
                continue
            if isinstance(a, lark.Tree) and a.data == "kwarg":
                key, value = a.children
                kwargs.append(KwArg(str(key), self.expr(value), self.loc(key)))
            else:
                args.append(self.expr(a))
        return Call(str(name_tok), tuple(args), tuple(kwargs), self.loc(t), self.loc(name_tok))

    def signature(self, t: lark.Tree) -> Signature:
        name_tok, *params = t.children
        out = []
        for p in params:
            if p is None:
                continue
            key, default = p.children
            out.append(
                Parameter(str(key), None if default is None else self.expr(default), self.loc(key))
            )
        return Signature(str(name_tok), tuple(out), self.loc(t))


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def parse_expr(text: str, locate: Locate) -> Expr:
    """Parse one expression string; raises ExprSyntaxError located in the file."""
    tree = _run(text, "start", locate)
    return _Builder(locate).expr(tree)


def parse_signature(text: str, locate: Locate) -> Signature:
    """Parse a block signature such as `down(c, stride=2)`."""
    tree = _run(text, "signature", locate)
    return _Builder(locate).signature(tree)


def _run(text: str, start: str, locate: Locate) -> Any:
    if not text.strip():
        raise ExprSyntaxError("empty expression", locate(0, 1), "write a layer such as dense(10)")
    try:
        return _parser().parse(text, start=start)
    except lark.exceptions.UnexpectedInput as e:
        raise _translate(e, text, locate) from None


def _translate(e: lark.exceptions.UnexpectedInput, text: str, locate: Locate) -> ExprSyntaxError:
    """lark's three kinds of syntax error, as one located message."""
    pos = getattr(e, "pos_in_stream", None)
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        pos = tok.start_pos if tok.type != "$END" else len(text)
        what = _END if tok.type == "$END" else f"'{tok}'"
        length = max(1, len(str(tok))) if tok.type != "$END" else 1
    elif isinstance(e, lark.exceptions.UnexpectedCharacters):
        what, length = f"character '{text[pos or 0]}'", 1
    else:  # UnexpectedEOF
        pos, what, length = len(text), _END, 1
    expected = _expected_words(getattr(e, "expected", None) or getattr(e, "allowed", None))
    message = f"syntax error: unexpected {what}"
    if expected:
        message += f"; expected {expected}"
    at = locate(min(pos or 0, max(0, len(text) - 1)) if text else 0, length)
    if what == _END and text:
        at = locate(len(text) - 1, 1)
    hint = _syntax_hint(text)
    if hint is None and isinstance(e, lark.exceptions.UnexpectedToken) and tok.type == "NAME":
        hint = "layers are chained with '->', arguments separated by ','"
    return ExprSyntaxError(message, at, hint)


_END = "end of the expression"


def _expected_words(expected: Any) -> str:
    if not expected:
        return ""
    words = sorted({_TERMINAL_WORDS.get(t, t.lower()) for t in expected})
    if len(words) > 6:
        return ""
    return " or ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_hint(text: str) -> str | None:
    if text.count("(") != text.count(")"):
        return "the parentheses are not balanced"
    if text.count("[") != text.count("]"):
        return "the brackets are not balanced"
    if "=>" in text or "|" in text:
        return "layers are chained with '->'"
    return None
