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

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, cast

import lark

from ..schema import grammar_text
from .errors import ExprSyntaxError, Loc

Locate = Callable[[int, int], Loc]
Span = tuple[int, int]  # offsets into the parsed text: [start, end)


def _locate(where: Locate, span: Span) -> Loc:
    return where(span[0], max(1, span[1] - span[0]))


class Num(NamedTuple):
    value: int | float
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class Str(NamedTuple):
    value: str
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class Name(NamedTuple):
    id: str
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class KwArg(NamedTuple):
    name: str
    value: Expr
    span: Span  # the keyword itself
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class Call(NamedTuple):
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span  # the whole call
    where: Locate
    name_span: Span

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)

    @property
    def name_loc(self) -> Loc:
        return _locate(self.where, self.name_span)


class ListExpr(NamedTuple):
    items: tuple[Expr, ...]
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class BinOp(NamedTuple):
    op: str  # + - * / // % **
    left: Expr
    right: Expr
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class Neg(NamedTuple):
    operand: Expr
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


class Pipe(NamedTuple):
    stages: tuple[Expr, ...]
    span: Span
    where: Locate

    @property
    def loc(self) -> Loc:
        return _locate(self.where, self.span)


# AST nodes are named tuples: immutable like the IR, and cheap to build by the thousand.
# Each keeps its span and the function that locates spans in the file (`where`); its
# `loc` is worked out when asked for, which is rarely more than once.
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


def references(e: Expr) -> Iterator[Name]:
    """Every bare name in an expression (the candidates for graph-node references); of a
    dotted name (`enc.h`, a part of node enc), the node's name."""
    if isinstance(e, Name):
        yield e._replace(id=e.id.split(".", 1)[0]) if "." in e.id else e
    elif isinstance(e, Pipe | ListExpr):
        for sub in e.stages if isinstance(e, Pipe) else e.items:
            yield from references(sub)
    elif isinstance(e, BinOp):
        yield from references(e.left)
        yield from references(e.right)
    elif isinstance(e, Neg):
        yield from references(e.operand)
    elif isinstance(e, Call):
        for a in e.args:
            yield from references(a)
        for kw in e.kwargs:
            yield from references(kw.value)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def identifiers(text: str) -> list[str]:
    """The identifiers in an expression string, without parsing it: enough to find the
    symbolic dims an input shape such as `[B, T*2]` names before anything is elaborated."""
    return _IDENTIFIER.findall(text)


# What a person calls lark's terminals in a syntax error.
_TERMINAL_WORDS = {
    "NAME": "a name", "DOTTED": "a name", "NUMBER": "a number", "STRING": "a string",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "PERCENT": "'%'",
    "__ANON_0": "'->'", "__ANON_1": "'//'", "__ANON_2": "'**'", "$END": "the end",
}  # fmt: skip


_Items = list[Any]  # a rule's children (the builder has a method named `list`)


class _Builder(lark.Transformer):
    """Builds AST nodes while lark parses (LALR runs these callbacks inline, so no parse
    tree is made). Every token is kept, so each node's span runs from its first token to
    its last; `locate` turns spans into file locations and is set for each parse."""

    def __init__(self) -> None:
        super().__init__()
        self.locate: Locate = lambda offset, length: Loc(None, 1, offset + 1)

    def _span(self, items: _Items) -> Span:
        i = len(items) - 1
        while items[i] is None:  # optional parts that are absent: [","] and the like
            i -= 1
        return _span(items[0])[0], _span(items[i])[1]

    def number(self, items: _Items) -> Num:
        return Num(_number(str(items[0])), self._span(items), self.locate)

    def string(self, items: _Items) -> Str:
        return Str(str(items[0])[1:-1], self._span(items), self.locate)

    def name(self, items: _Items) -> Name:
        return Name(str(items[0]), self._span(items), self.locate)

    def atom(self, items: _Items) -> Expr:  # "(" pipeline ")": the parentheses count
        return items[1]._replace(span=self._span(items))

    def call(self, items: _Items) -> Call:
        name_tok, _, arguments, _ = items
        args: list[Expr] = []
        kwargs: list[KwArg] = []
        for a in arguments or ():
            (kwargs if isinstance(a, KwArg) else args).append(a)
        span = self._span(items)
        return Call(str(name_tok), tuple(args), tuple(kwargs), span, self.locate, _span(name_tok))

    def arguments(self, items: _Items) -> _Items:
        return _values(items)

    def kwarg(self, items: _Items) -> KwArg:
        key, _, value = items
        return KwArg(str(key), value, _span(key), self.locate)

    def list(self, items: _Items) -> ListExpr:
        return ListExpr(tuple(_values(items)), self._span(items), self.locate)

    def pipe(self, items: _Items) -> Pipe:
        return Pipe(tuple(_values(items)), self._span(items), self.locate)

    def neg(self, items: _Items) -> Neg:
        return Neg(items[1], self._span(items), self.locate)

    def _binop(self, items: _Items) -> BinOp:
        left, op, right = items
        return BinOp(str(op), left, right, self._span(items), self.locate)

    add = sub = mul = div = floordiv = mod = pow = _binop

    def batch(self, items: _Items) -> _Items:
        return _values(items)

    def parameter(self, items: _Items) -> Parameter:
        key, *rest = items
        values = _values(rest)
        return Parameter(str(key), values[0] if values else None, _locate(self.locate, _span(key)))

    def signature(self, items: _Items) -> Signature:
        name_tok, *rest = items
        params = tuple(p for p in rest if isinstance(p, Parameter))
        return Signature(str(name_tok), params, _locate(self.locate, self._span(items)))


def _span(item: Any) -> Span:
    if isinstance(item, lark.Token):
        return item.start_pos or 0, item.end_pos or 0
    return item.span


def _values(items: _Items) -> _Items:
    """The children that are not punctuation."""
    return [i for i in items if i is not None and not isinstance(i, lark.Token)]


class _Lexer(lark.lexer.Lexer):
    """All of the grammar's terminals in one regular expression, matched by `re` in C.

    The terminals come from the grammar itself; none of them overlap but for operator
    prefixes (`-` of `->`, `*` of `**`, `/` of `//`), which longest-first order settles,
    so this lexer gives exactly lark's tokens, about four times faster."""

    def __init__(self, conf: Any) -> None:
        terminals = sorted(conf.terminals, key=lambda t: (-t.priority, -t.pattern.max_width))
        self.ignore = set(conf.ignore)
        self.pattern = re.compile(
            "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals)
        )

    def lex(self, text: str) -> Iterator[lark.Token]:  # type: ignore[override]
        pos, match = 0, self.pattern.match
        while pos < len(text):
            m = match(text, pos)
            if m is None:
                raise lark.exceptions.UnexpectedCharacters(text, pos, 1, pos + 1)
            kind = m.lastgroup
            assert kind is not None
            end = m.end()
            if kind not in self.ignore:
                yield lark.Token(kind, m.group(), pos, 1, pos + 1, 1, end + 1, end)
            pos = end


_BUILDER = _Builder()


@cache
def _parser() -> lark.Lark:
    return lark.Lark(
        grammar_text(),
        parser="lalr",
        start=["start", "signature", "batch"],
        keep_all_tokens=True,
        maybe_placeholders=True,
        transformer=_BUILDER,
        lexer=_Lexer,
    )


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def parse_expr(text: str, locate: Locate) -> Expr:
    """Parse one expression string; raises ExprSyntaxError located in the file."""
    result: Expr = _run(text, "start", locate)
    return result


def parse_many(texts: Sequence[str], locates: Sequence[Locate]) -> list[Expr] | None:
    """Parse many expression strings in one lark parse (the same ASTs as `parse_expr`
    gives, located the same way); None when any of them fails: parse those one by one
    to report their errors."""
    starts, pieces, pos = [], [], 0
    for text in texts:
        if ";" in text or not text.strip():
            return None
        starts.append(pos)
        pieces.append(text)
        pos += len(text) + 3  # " ; "
    joined = " ; ".join(pieces)

    def locate(offset: int, length: int) -> Loc:
        i = bisect_right(starts, offset) - 1
        return locates[i](offset - starts[i], length)

    try:
        for text, where in zip(texts, locates, strict=True):
            _check_depth(text, where)
        _BUILDER.locate = locate
        result = _parser().parse(joined, start="batch")
    except (ExprSyntaxError, lark.exceptions.UnexpectedInput):
        return None
    return cast(list[Expr], result)


def as_call(e: Name) -> Call:
    """`relu` as the call `relu()`."""
    return Call(e.id, (), (), e.span, e.where, e.span)


def parse_signature(text: str, locate: Locate) -> Signature:
    """Parse a block signature such as `down(c, stride=2)`."""
    result: Signature = _run(text, "signature", locate)
    return result


def _run(text: str, start: str, locate: Locate) -> Any:
    if not text.strip():
        raise ExprSyntaxError("empty expression", locate(0, 1), "write a layer such as dense(10)")
    _check_depth(text, locate)
    parser = _parser()
    _BUILDER.locate = locate  # parsing is synchronous: one parse at a time per process
    try:
        return parser.parse(text, start=start)
    except lark.exceptions.UnexpectedInput as e:
        raise _translate(e, text, locate) from None


MAX_NESTING = 64  # parentheses and brackets; deeper is no network anyone writes by hand
MAX_OPERATORS = 100  # arithmetic operators in one string ('->' does not count)
_OPERATOR = re.compile(r"->|[-+*/%]")


def _check_depth(text: str, locate: Locate) -> None:
    """Bound how deep an expression's AST can be, so nothing recursive overflows."""
    ops = [m for m in _OPERATOR.finditer(text) if m.group() != "->"]
    if len(ops) > MAX_OPERATORS:
        raise ExprSyntaxError(
            f"the expression has more than {MAX_OPERATORS} operators",
            locate(ops[MAX_OPERATORS].start(), 1),
            "compute the value in params, or split the expression",
        )
    depth = 0
    for i, c in enumerate(text):
        if c in "([":
            depth += 1
            if depth > MAX_NESTING:
                raise ExprSyntaxError(
                    f"the expression nests deeper than {MAX_NESTING} parentheses",
                    locate(i, 1),
                    "split it into blocks or graph nodes",
                )
        elif c in ")]":
            depth -= 1


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
