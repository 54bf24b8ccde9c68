"""Tests for compiler/dims.py: symbolic dims as canonical integer polynomials.

Table-driven cases pin the canonical text and the exact-division rules; property tests
build random expressions both as dims and as Python ints (with random positive symbol
values) and check that evaluation, substitution, formatting and re-parsing agree.
Re-parsing is the language's own: a dim's text goes through the expression grammar and
elaboration (`parse_dim` below), the way a spec's `inputs:` shapes become dims.
"""

from __future__ import annotations

import copy
import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

DIMS_PATH = Path(__file__).resolve().parents[1] / "compiler" / "dims.py"

try:
    from dlc.compiler import dims
except ImportError:  # the package is not installed: load the (dependency-free) file
    _spec = importlib.util.spec_from_file_location("dlc_dims_under_test", DIMS_PATH)
    assert _spec is not None and _spec.loader is not None
    dims = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = dims
    _spec.loader.exec_module(dims)

Sym = dims.Sym
sym = dims.sym
B, T, H, W = sym("B"), sym("T"), sym("H"), sym("W")


def parse_dim(text: str) -> object:
    """A dim's text as elaboration reads it: the text of a param that an input shape
    names (so any expression the grammar takes, over the symbols B, T, H and W)."""
    import json

    pipeline = pytest.importorskip("dlc.compiler.pipeline")
    spec = (
        "dlc: 1\nname: t\n"
        f"params: {{d: {json.dumps(text)}}}\n"
        "inputs: {x: [d], s: [B, T, H, W]}\n"
        "model: {y: x -> relu}\n"
    )
    return pipeline.check_text(spec, "dim.yaml").graph.inputs[0].type.shape[0]


# -- canonical equality -----------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (lambda: T + T, lambda: 2 * T),
        (lambda: T * 2, lambda: 2 * T),
        (lambda: B * T, lambda: T * B),
        (lambda: (B + 1) * (T + 2), lambda: B * T + 2 * B + T + 2),
        (lambda: (T + 1) ** 2, lambda: T * T + 2 * T + 1),
        (lambda: (2 * T + 3) // 2, lambda: T + 1),
        (lambda: (4 * H) // 2, lambda: 2 * H),
        (lambda: (H + 2 * 1 - 3) // 2 + 1, lambda: (H + 1) // 2),
        (lambda: (H - 3) // 2 + 1, lambda: (H + 1) // 2 - 1),
        (lambda: (H // 2) // 2, lambda: H // 4),
        (lambda: (H // 2 + 1) // 2, lambda: (H + 2) // 4),
        (lambda: (2 * H + 2) // 4, lambda: (H + 1) // 2),
        (lambda: (2 * H + 3) // 4, lambda: (H + 1) // 2),
        (lambda: (3 * H + 1) % 6, lambda: 3 * (H % 2) + 1),
        (lambda: (H + 4) % 2, lambda: H % 2),
        (lambda: H // 1, lambda: H),
        (lambda: -(T * -1), lambda: T),
        (lambda: 5 - T, lambda: -T + 5),
        (lambda: B * 784 // 784, lambda: B),
        (lambda: H * W // 256 * 2, lambda: 2 * ((H * W) // 256)),
    ],
)
def test_canonical_equality(left, right) -> None:
    a, b = left(), right()
    assert a == b
    assert hash(a) == hash(b)
    assert dims.dims_equal(a, b)
    assert str(a) == str(b)


@pytest.mark.parametrize(
    ("make", "value"),
    [
        (lambda: T - T, 0),
        (lambda: (2 * T + 3) // 2 - T, 1),
        (lambda: (B * 784) // B, 784),
        (lambda: (B * T) % T, 0),
        (lambda: (4 * H + 6) % 2, 0),
        (lambda: (4 * H + 7) % 2, 1),
        (lambda: (4 * H + 7) % -2, -1),
        (lambda: T**0, 1),
        (lambda: 0 * T, 0),
        (lambda: H % 1, 0),
        (lambda: 0 // T, 0),
        (lambda: 0 % T, 0),
        (lambda: dims.product([]), 1),
        (lambda: dims.product([2, 3, 4]), 24),
        (lambda: (T + 1) * (T - 1) - T * T, -1),
    ],
)
def test_constant_results_are_plain_ints(make, value) -> None:
    result = make()
    assert type(result) is int
    assert result == value


def test_sym_is_never_equal_to_an_int() -> None:
    assert T != 1
    assert not dims.dims_equal(T, 1)
    assert dims.dims_equal(3, 3) and not dims.dims_equal(3, 4)
    assert T != "T"
    assert T != H and B * T != B + T


def test_sym_is_hashable_and_usable_as_a_key() -> None:
    table = {2 * T: "a", B * T + 1: "b"}
    assert table[T + T] == "a"
    assert table[1 + T * B] == "b"
    assert len({T + T, 2 * T, T * 2, T}) == 2


def test_sym_is_immutable_and_picklable() -> None:
    d = (H + 1) // 2 + B * T
    with pytest.raises(AttributeError):
        d._terms = ()
    with pytest.raises(AttributeError):
        del d._terms
    assert pickle.loads(pickle.dumps(d)) == d
    assert hash(pickle.loads(pickle.dumps(d))) == hash(d)
    assert copy.deepcopy(d) == d and copy.copy(d) == d


def test_sym_constructor_and_names() -> None:
    assert Sym("B") == B
    assert sym("seq_len") == sym("seq_len")
    assert dims.is_sym(T) and dims.is_sym(T + 1)
    assert not dims.is_sym(3) and not dims.is_sym("T")
    assert isinstance(T, dims.Dim) and isinstance(3, dims.Dim)
    for bad in ("", "1x", "a b", "a-b"):
        with pytest.raises(ValueError):
            sym(bad)


# -- formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: B, "B"),
        (lambda: 2 * T, "2*T"),
        (lambda: T * 2, "2*T"),
        (lambda: T + 1, "T + 1"),
        (lambda: T - 3, "T - 3"),
        (lambda: 3 - T, "3 - T"),
        (lambda: -T, "-T"),
        (lambda: -2 * T - 1, "-2*T - 1"),
        (lambda: H // 2, "H//2"),
        (lambda: B * T, "B*T"),
        (lambda: T * B, "B*T"),
        (lambda: T * T, "T**2"),
        (lambda: B * 784, "784*B"),
        (lambda: B * T + 2 * T + 1, "B*T + 2*T + 1"),
        (lambda: T + B * T + 1 + 2 * T, "B*T + 3*T + 1"),
        (lambda: (H - 3) // 2 + 1, "(H + 1)//2 - 1"),
        (lambda: (H + 2 * 1 - 3) // 2 + 1, "(H + 1)//2"),
        (lambda: H * W // 256, "(H*W)//256"),
        (lambda: (H + 1) % 2, "(H + 1)%2"),
        (lambda: H % 2, "H%2"),
        (lambda: 2 * (H // 2), "2*(H//2)"),
        (lambda: -(H // 2), "-(H//2)"),
        (lambda: T - H // 2, "T - H//2"),
        (lambda: (H // 2) ** 2, "(H//2)**2"),
        (lambda: B * (H % 3), "B*(H%3)"),
        (lambda: (2 * H) // 3, "(2*H)//3"),
        (lambda: (H % 4) // 3, "(H%4)//3"),
    ],
)
def test_format_dim(make, text) -> None:
    d = make()
    assert dims.format_dim(d) == text
    assert str(d) == repr(d) == text
    assert parse_dim(text) == d


def test_format_ints_and_shapes() -> None:
    assert dims.format_dim(7) == "7"
    assert dims.format_dim(-1) == "-1"
    assert dims.format_shape((B, 784)) == "[B, 784]"
    assert dims.format_shape((B, T * 2, 64)) == "[B, 2*T, 64]"
    assert dims.format_shape(()) == "[]"
    assert repr((B, T + 1)) == "(B, T + 1)"


# -- exact division -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (lambda: 784 * B, lambda: 784, lambda: B),
        (lambda: B * T, lambda: T, lambda: B),
        (lambda: 6 * T, lambda: 4, lambda: None),
        (lambda: 6 * T, lambda: 3, lambda: 2 * T),
        (lambda: 6 * T + 4, lambda: -2, lambda: -3 * T - 2),
        (lambda: 12, lambda: 4, lambda: 3),
        (lambda: 7, lambda: 2, lambda: None),
        (lambda: 7, lambda: 0, lambda: None),
        (lambda: T, lambda: 0, lambda: None),
        (lambda: 0, lambda: T, lambda: 0),
        (lambda: 5, lambda: T, lambda: None),
        (lambda: T, lambda: T, lambda: 1),
        (lambda: 3 * T, lambda: T, lambda: 3),
        (lambda: T, lambda: 2 * T, lambda: None),
        (lambda: (B + 1) * (T + 2), lambda: T + 2, lambda: B + 1),
        (lambda: B * B - 1, lambda: B - 1, lambda: B + 1),
        (lambda: B * B + 1, lambda: B - 1, lambda: None),
        (lambda: 2 * B * T + 2 * T, lambda: 2 * T, lambda: B + 1),
        (lambda: B * (H // 2), lambda: H // 2, lambda: B),
        (lambda: B * T, lambda: H, lambda: None),
        (lambda: B * H * W // 1, lambda: H * W, lambda: B),
    ],
)
def test_exact_div(a, b, expected) -> None:
    result = dims.exact_div(a(), b())
    want = expected()
    if want is None:
        assert result is None
    else:
        assert result == want
        assert type(result) is type(want)


def test_floordiv_and_mod_by_a_sym() -> None:
    assert (B * T) // T == B
    assert dims.floordiv(B * 784, 784) == B
    assert dims.floordiv(9, 2) == 4
    with pytest.raises(TypeError):
        (B + 1) // T
    with pytest.raises(TypeError):
        (B + 1) % T
    with pytest.raises(TypeError):
        5 // T
    with pytest.raises(TypeError):
        5 % T


def test_division_errors() -> None:
    with pytest.raises(ZeroDivisionError):
        T // 0
    with pytest.raises(ZeroDivisionError):
        T % 0
    with pytest.raises(ValueError):
        T**-1
    with pytest.raises(TypeError):
        T / 2
    with pytest.raises(TypeError):
        T + 1.5
    with pytest.raises(TypeError):
        2**T


def test_negative_divisors_follow_python() -> None:
    d1, d2 = H // -2, H % -3
    for h in range(-7, 8):
        assert dims.evaluate(d1, {"H": h}) == h // -2
        assert dims.evaluate(d2, {"H": h}) == h % -3


# -- symbols, substitution, evaluation ------------------------------------------------


def test_free_symbols() -> None:
    assert dims.free_symbols(7) == frozenset()
    assert dims.free_symbols(B * T + 1) == {"B", "T"}
    assert dims.free_symbols((H + W) // 2 * B) == {"B", "H", "W"}
    assert dims.free_symbols(T - T + 1) == frozenset()


def test_substitute() -> None:
    flops = 2 * B * T * 64 + B
    assert dims.substitute(flops, {"B": 1}) == 128 * T + 1
    assert dims.substitute(flops, {"B": 2, "T": 3}) == 2 * 2 * 3 * 64 + 2
    assert type(dims.substitute(flops, {"B": 2, "T": 3})) is int
    assert dims.substitute(flops, {}) is flops
    assert dims.substitute(flops, {"Z": 4}) is flops
    assert dims.substitute(5, {"B": 2}) == 5
    assert dims.substitute((H - 3) // 2 + 1, {"H": 32}) == 15
    assert dims.substitute((H - 3) // 2 + 1, {"H": 2 * W + 1}) == W
    assert dims.substitute(B * T, {"T": B}) == B**2
    assert dims.substitute(T - B, {"T": B}) == 0


def test_evaluate() -> None:
    assert dims.evaluate(7, {}) == 7
    assert dims.evaluate((H - 3) // 2 + 1, {"H": 9}) == 4
    assert dims.evaluate(B * T % 5, {"B": 3, "T": 4}) == 2
    with pytest.raises(ValueError, match="'T'"):
        dims.evaluate(B + T, {"B": 1})
    with pytest.raises(TypeError):
        dims.evaluate(B, {"B": 1.5})


def test_parse_dim() -> None:
    from dlc.compiler.errors import DlcError

    assert parse_dim("B") == B
    assert parse_dim(" 12 ") == 12
    assert parse_dim("(H - 3)//2 + 1") == (H - 3) // 2 + 1
    assert parse_dim("-T + 2") == 2 - T
    assert parse_dim("T**2 % 3") == (T * T) % 3
    # not exact, no expression, a call, not an integer, by zero, a fraction, a symbolic
    # divisor, not a number, not a positive size
    bad = ("T / 2", "T +", "f(T)", "1.5", "T // 0", "2**-1", "T // B", "true", "T - T")
    for text in bad:
        with pytest.raises(DlcError):
            parse_dim(text)


def test_module_imports_nothing_heavy() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(DIMS_PATH)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert m.format_dim((m.sym('H') - 3) // 2 + 1) == '(H + 1)//2 - 1'\n"
        "print(sorted({'torch', 'numpy', 'sympy'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- property tests -------------------------------------------------------------------

NAMES = ("B", "T", "H")
_leaves = st.one_of(
    st.sampled_from(NAMES).map(lambda n: ("sym", n)),
    st.integers(-6, 6).map(lambda k: ("int", k)),
)
_divisors = st.integers(-6, 6).filter(bool)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*"]), children, children),
        st.tuples(st.sampled_from(["//", "%"]), children, _divisors),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("**"), _leaves, st.integers(0, 3)),
    )


exprs = st.recursive(_leaves, _extend, max_leaves=10)
envs = st.fixed_dictionaries({n: st.integers(1, 40) for n in NAMES})

_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
}


def build(e: tuple) -> object:
    """The expression as a dim."""
    if e[0] == "sym":
        return sym(e[1])
    if e[0] == "int":
        return e[1]
    if e[0] == "neg":
        return -build(e[1])
    right = e[2] if isinstance(e[2], int) else build(e[2])
    return _OPS[e[0]](build(e[1]), right)


def value(e: tuple, env: dict[str, int]) -> int:
    """The expression as a Python int."""
    if e[0] == "sym":
        return env[e[1]]
    if e[0] == "int":
        return e[1]
    if e[0] == "neg":
        return -value(e[1], env)
    right = e[2] if isinstance(e[2], int) else value(e[2], env)
    return _OPS[e[0]](value(e[1], env), right)


PROPS = settings(max_examples=300, deadline=None)


@PROPS
@given(exprs, envs)
def test_evaluate_matches_python(e: tuple, env: dict[str, int]) -> None:
    d = build(e)
    assert isinstance(d, int | Sym)
    assert dims.evaluate(d, env) == value(e, env)
    if isinstance(d, int):  # a constant result: the expression is constant
        assert type(d) is int
        assert d == value(e, {n: v + 7 for n, v in env.items()})


@PROPS
@given(exprs, envs)
def test_substitute_matches_python(e: tuple, env: dict[str, int]) -> None:
    d = build(e)
    full = dims.substitute(d, env)
    assert type(full) is int and full == value(e, env)
    partial = dims.substitute(d, {"B": env["B"]})
    assert "B" not in dims.free_symbols(partial)
    assert dims.evaluate(partial, env) == value(e, env)
    assert dims.free_symbols(d) <= set(NAMES)


@PROPS
@given(exprs, envs)
def test_text_round_trips(e: tuple, env: dict[str, int]) -> None:
    d = build(e)
    text = dims.format_dim(d)
    if dims.is_sym(d) or d >= 1:  # a spec's dim is a symbol or a size
        assert parse_dim(text) == d
    assert eval(text, {"__builtins__": {}}, dict(env)) == value(e, env)  # noqa: S307


@PROPS
@given(exprs, exprs, exprs)
def test_ring_laws_are_canonical(a_: tuple, b_: tuple, c_: tuple) -> None:
    a, b, c = build(a_), build(b_), build(c_)
    pairs = [
        (a + b, b + a),
        (a * b, b * a),
        ((a + b) + c, a + (b + c)),
        ((a * b) * c, a * (b * c)),
        ((a + b) * c, a * c + b * c),
        ((a + b) - b, a),
        (a - a, 0),
        (-(a * -1), a),
        (a * 1, a),
        (a * 2, a + a),
    ]
    for left, right in pairs:
        assert dims.dims_equal(left, right), (left, right)
        assert hash(left) == hash(right)
        assert type(left) is type(right)


@PROPS
@given(exprs, exprs, st.integers(1, 6), st.integers(-20, 20))
def test_division_laws(a_: tuple, b_: tuple, c: int, k: int) -> None:
    a, b = build(a_), build(b_)
    assert (a * c + k) // c == a + k // c
    assert (a * c + k) % c == k % c
    assert dims.exact_div(a * c, c) == a
    if not dims.dims_equal(b, 0):
        assert dims.exact_div(a * b, b) == a
