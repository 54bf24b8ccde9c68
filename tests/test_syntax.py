"""The expression grammar: precedence, positions inside strings, syntax errors, and
that parsing many strings in one pass gives exactly the one-by-one ASTs."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import SPECS
from dlc.compiler.errors import ExprSyntaxError, Loc, Source
from dlc.compiler.loader import load_file
from dlc.compiler.syntax import (
    BinOp,
    Call,
    Expr,
    ListExpr,
    Name,
    Neg,
    Num,
    Pipe,
    Str,
    parse_expr,
    parse_many,
    parse_signature,
)

SRC = Source("t", "")


def at(offset: int, length: int) -> Loc:
    return Loc(SRC, 1, offset + 1, offset + 1 + length)


def unparse(e: Expr) -> str:
    """An expression's canonical text: every operation parenthesized, one spelling per AST,
    so a test states the tree the parser built as a string."""
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


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("dense(hidden) -> relu -> dropout(p)", "dense(hidden) -> relu -> dropout(p)"),
        ("a + s -> relu", "(a + s) -> relu"),
        ("a -> b + c", "a -> (b + c)"),
        ("h * 2 // k", "((h * 2) // k)"),
        ("-x ** 2", "-(x ** 2)"),
        ("2 ** 3 ** 2", "(2 ** (3 ** 2))"),
        ("a - b - c", "((a - b) - c)"),
        ("conv2d(32, 3, padding=same,)", "conv2d(32, 3, padding=same)"),
        ("[B, -1, 28]", "[B, -1, 28]"),
        ("f('x', \"y\", 1e-3, .5, 3.)", "f('x', 'y', 0.001, 0.5, 3.0)"),
        ("parallel(a -> b, c, merge=add)", "parallel(a -> b, c, merge=add)"),
        ("(a -> b)", "a -> b"),
    ],
)
def test_precedence_and_canonical_text(text: str, canonical: str) -> None:
    assert unparse(parse_expr(text, at)) == canonical


def test_every_node_is_located_in_the_string() -> None:
    e = parse_expr("x -> dense(h * 2, bias=false) -> relu", at)
    assert isinstance(e, Pipe)
    call = e.stages[1]
    assert isinstance(call, Call)
    assert (call.loc.col, call.loc.end_col) == (6, 30)
    assert (call.name_loc.col, call.name_loc.end_col) == (6, 11)
    arg = call.args[0]
    assert isinstance(arg, BinOp) and (arg.loc.col, arg.loc.end_col) == (12, 17)
    assert (call.kwargs[0].loc.col, call.kwargs[0].loc.end_col) == (19, 23)
    assert isinstance(e.stages[2], Name) and e.stages[2].loc.col == 34


def test_signature() -> None:
    sig = parse_signature("down(c, stride=2)", at)
    assert sig.name == "down" and [p.name for p in sig.params] == ["c", "stride"]
    assert sig.params[0].default is None and unparse(sig.params[1].default) == "2"
    assert parse_signature("head", at).params == ()


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        ("dense(4", "unexpected end of the expression; expected ')' or ','", 7),
        ("dense(4))", "unexpected ')'", 9),
        ("dense(4) relu", "unexpected 'relu'", 10),
        ("a $ b", "unexpected character '$'", 3),
        ("a -> -> b", "unexpected '->'", 6),
        ("", "empty expression", 1),
        ("a ; b", "unexpected ';'", 3),
    ],
)
def test_syntax_errors(text: str, message: str, col: int) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_expr(text, at)
    assert message in info.value.message
    assert info.value.loc.col == col


def _same(a: Any, b: Any) -> bool:
    """Equal ASTs located at the same places (spans are offsets into what lark was given,
    which differ)."""
    if isinstance(a, tuple) and hasattr(a, "_fields"):
        fields = [f for f in a._fields if f not in ("span", "where", "name_span")]
        return (
            type(a) is type(b)
            and a.loc == b.loc
            and all(_same(getattr(a, f), getattr(b, f)) for f in fields)
        )
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_parse_many_equals_one_by_one(path) -> None:  # noqa: ANN001
    doc = load_file(path)
    nets = doc.data.get("networks") or {"": doc.data}  # a spec with networks: has several
    paths, texts = [], []
    for name, net in nets.items():
        model = net["model"]
        for k in range(len(model)) if isinstance(model, list) else model:
            paths.append((("networks", name) if name else ()) + ("model", k))
            texts.append(model[k])
    locates = [doc.text_locator(p) for p in paths]
    many = parse_many(texts, locates)
    assert many is not None
    singles = [parse_expr(t, loc) for t, loc in zip(texts, locates, strict=True)]
    assert all(_same(a, b) for a, b in zip(many, singles, strict=True))


def test_parse_many_gives_up_on_an_error() -> None:
    assert parse_many(["relu", "dense(", "tanh"], [at, at, at]) is None
    assert parse_many(["relu", "'a;b'"], [at, at]) is None  # ';' is only a separator
