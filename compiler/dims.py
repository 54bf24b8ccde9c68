"""Symbolic tensor dimensions: exact integer polynomials over opaque atoms.

A dim is either a plain Python `int` or a `Sym`. A `Sym` is a polynomial with integer
coefficients over *atoms*; an atom is a symbol (`B`, `T`: a positive integer the spec
leaves open) or an opaque `floor(p / c)` or `p mod c` of a polynomial `p` and an
integer `c > 1` that could not be simplified. The polynomial is stored in one canonical
form (a sorted tuple of `(monomial, coeff)` with zero terms dropped; a monomial is a
sorted tuple of `(atom, power)`), so two dims that are equal as polynomials are equal
objects: `T + T == 2*T`, and `784*B` exactly divided by 784 is `B`. A result that
normalises to a constant is returned as a plain `int`, so a `Sym` is never a constant.

Floor division by an int `c > 0` splits every coefficient `k = c*q + r` (Python
`divmod`, the constant term included): `p // c == Q + R // c`. When `R` is a constant
the result is exact (`(2*T + 3)//2 == T + 1`); otherwise `R // c` becomes an atom,
normalised further (the gcd of `R`'s coefficients and `c` is divided out, and nested
floors merge: `(H//2 + 1)//2 == (H + 2)//4`). `%` works the same way. Division by a
negative int uses `p // -c == (-p) // c`; by zero it raises `ZeroDivisionError`. `//`
and `%` by a `Sym` are exact or raise `TypeError` (no opaque atoms with a symbolic
divisor). Atoms are opaque: `H//2 + (H + 1)//2` equals `H` for every `H` but is not
recognised as such; equality is polynomial identity over the atoms.

Every rewrite above holds for all integers, so the results are exact whatever the
symbols' values; that symbols are positive matters only to the users of dims.

Atoms are plain nested tuples, `(0, name)`, `(1, terms, c)` (floor) or `(2, terms, c)`
(mod), so that hashing, equality and the canonical sort all run at C speed; `Sym`
caches its hash and its text. The module is pure Python and imports nothing heavy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TypeAlias

__all__ = [
    "Dim",
    "Sym",
    "dims_equal",
    "evaluate",
    "exact_div",
    "floordiv",
    "format_dim",
    "format_shape",
    "free_symbols",
    "is_sym",
    "product",
    "substitute",
    "sym",
]

_SYM, _FLOOR, _MOD = 0, 1, 2
# Atom: (_SYM, name) | (_FLOOR, terms, c) | (_MOD, terms, c); kinds sort symbols first.
Atom: TypeAlias = tuple
Mono: TypeAlias = tuple  # tuple[tuple[Atom, int], ...], sorted by atom, powers >= 1
Terms: TypeAlias = tuple  # tuple[tuple[Mono, int], ...], sorted by monomial, coeffs != 0

# Compares greater than every (atom, -power) pair: ends the lex keys of `_lex_key`.
_LEX_END = ((3,),)


class Sym:
    """A non-constant symbolic dim: an immutable, hashable, canonical polynomial.

    Build one with `sym(name)` (or `Sym(name)`) and arithmetic; `+ - *` take ints or
    Syms on either side, `//` and `%` take an int divisor (or an exact Sym divisor),
    `**` a non-negative int. `str()` and `repr()` give the canonical text.
    """

    __slots__ = ("_terms", "_hash", "_text", "_free")
    _terms: Terms
    _hash: int
    _text: str
    _free: frozenset[str]

    def __new__(cls, name: str) -> Sym:
        return sym(name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Sym is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Sym is immutable")

    def __reduce__(self) -> tuple[Callable[[Terms], Sym], tuple[Terms]]:
        return _mk, (self._terms,)

    # -- identity ---------------------------------------------------------------

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:  # not computed yet
            h = hash(self._terms)
            _set_hash(self, h)
            return h

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, Sym):
            return hash(self) == hash(other) and self._terms == other._terms
        if isinstance(other, int):
            return False  # a Sym is never a constant
        return NotImplemented

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:  # not computed yet
            text = _fmt_terms(self._terms)
            _set_text(self, text)
            return text

    __repr__ = __str__

    # -- arithmetic -------------------------------------------------------------

    def __add__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _add_const(self, other)
        if isinstance(other, Sym):
            return _add_terms(self._terms, other._terms)
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _add_const(self, -other)
        if isinstance(other, Sym):
            return _add_terms(self._terms, _neg_terms(other._terms))
        return NotImplemented

    def __rsub__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _add_const(-self, other)
        return NotImplemented

    def __neg__(self) -> Sym:
        return _mk(_neg_terms(self._terms))

    def __pos__(self) -> Sym:
        return self

    def __mul__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _scale(self, other)
        if isinstance(other, Sym):
            return _mul_terms(self._terms, other._terms)
        return NotImplemented

    __rmul__ = __mul__

    def __pow__(self, n: object) -> Dim:
        if not isinstance(n, int):
            return NotImplemented
        if n < 0:
            raise ValueError(f"negative power of dim {self}: {n}")
        result: Dim = 1
        base: Dim = self
        while n:
            if n & 1:
                result = result * base
            n >>= 1
            if n:
                base = base * base
        return result

    def __floordiv__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _floordiv(self, other)
        if isinstance(other, Sym):
            return _exact_or_raise(self, other, "//")
        return NotImplemented

    def __rfloordiv__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _exact_or_raise(other, self, "//")
        return NotImplemented

    def __mod__(self, other: object) -> Dim:
        if isinstance(other, int):
            return _mod(self, other)
        if isinstance(other, Sym):
            _exact_or_raise(self, other, "%")
            return 0
        return NotImplemented

    def __rmod__(self, other: object) -> Dim:
        if isinstance(other, int):
            _exact_or_raise(other, self, "%")
            return 0
        return NotImplemented

    def __divmod__(self, other: object) -> tuple[Dim, Dim]:
        return self // other, self % other  # type: ignore[operator]


Dim: TypeAlias = int | Sym

# Slot setters: they bypass Sym.__setattr__, which forbids every assignment. Only
# `_terms` is set on construction; the other slots are caches filled on first use.
_set_terms = Sym.__dict__["_terms"].__set__
_set_hash = Sym.__dict__["_hash"].__set__
_set_text = Sym.__dict__["_text"].__set__
_set_free = Sym.__dict__["_free"].__set__
_new_object = object.__new__


# -- public functions -------------------------------------------------------------

_SYMBOLS: dict[str, Sym] = {}


def sym(name: str) -> Sym:
    """The symbol `name` (an identifier) as a dim."""
    s = _SYMBOLS.get(name)
    if s is None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a dim symbol must be an identifier, got {name!r}")
        s = _atom_dim((_SYM, name))
        _SYMBOLS[name] = s
    return s


def is_sym(d: object) -> bool:
    """Whether `d` is a symbolic (non-constant) dim."""
    return isinstance(d, Sym)


def format_dim(d: Dim) -> str:
    """The canonical text of a dim: `B`, `2*T`, `B*T + 1`, `(H + 1)//2 - 1`, `T**2`."""
    return str(d)


def format_shape(shape: Iterable[Dim]) -> str:
    """A shape as text: `[B, 784]`, `[B, 2*T, 64]`."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def dims_equal(a: Dim, b: Dim) -> bool:
    """Canonical equality: polynomial identity for Syms, numeric for ints."""
    return a == b


def product(dims: Iterable[Dim]) -> Dim:
    """The product of `dims`; 1 for none."""
    result: Dim = 1
    for d in dims:
        result = result * d
    return result


def floordiv(a: Dim, b: int) -> Dim:
    """`a // b` (floor division, Python semantics, exact for Syms)."""
    return a // b


def exact_div(a: Dim, b: Dim) -> Dim | None:
    """`a / b` when `b` divides `a` as integer polynomials, else None (also for b == 0).

    `784*B / 784 -> B`, `B*T / T -> B`, `6*T / 4 -> None`, `12 / 4 -> 3`, `7 / 2 -> None`.
    """
    if isinstance(b, int):
        if b == 0:
            return None
        if isinstance(a, int):
            return a // b if a % b == 0 else None
        if any(k % b for _, k in a._terms):
            return None
        return _mk(tuple([(m, k // b) for m, k in a._terms]))
    if isinstance(a, int):
        return 0 if a == 0 else None
    if a == b:
        return 1
    return _poly_div(a._terms, b._terms)


def free_symbols(d: Dim) -> frozenset[str]:
    """The names of the symbols `d` depends on."""
    if isinstance(d, int):
        return frozenset()
    try:
        return d._free
    except AttributeError:  # not computed yet
        free = frozenset(_terms_symbols(d._terms))
        _set_free(d, free)
        return free


def substitute(d: Dim, env: Mapping[str, Dim]) -> Dim:
    """`d` with the symbols named in `env` replaced by their dims, re-normalised."""
    if isinstance(d, int) or not env or free_symbols(d).isdisjoint(env):
        return d
    return _subst_terms(d._terms, env)


def evaluate(d: Dim, env: Mapping[str, int]) -> int:
    """The value of `d` for the symbol values in `env`; ValueError names a missing one."""
    if isinstance(d, int):
        return d
    return _eval_terms(d._terms, env)


# -- construction -----------------------------------------------------------------


def _mk(terms: Terms) -> Sym:
    """A Sym from canonical, non-constant terms (no checks)."""
    s = _new_object(Sym)
    _set_terms(s, terms)
    return s


def _from_dict(poly: dict[Mono, int]) -> Dim:
    """A dim from {monomial: non-zero coeff}: an int when constant, else a Sym."""
    if not poly:
        return 0
    if len(poly) == 1 and () in poly:
        return poly[()]
    return _mk(tuple(sorted(poly.items())))


def _atom_dim(atom: Atom) -> Sym:
    return _mk(((((atom, 1),), 1),))


# -- ring operations ----------------------------------------------------------------


def _neg_terms(terms: Terms) -> Terms:
    return tuple([(m, -k) for m, k in terms])


def _add_const(s: Sym, k: int) -> Dim:
    if not k:
        return s
    terms = s._terms
    if terms[0][0] == ():  # the constant monomial sorts first
        c = terms[0][1] + k
        return _mk(((((), c),) + terms[1:]) if c else terms[1:])
    return _mk((((), k),) + terms)


def _add_terms(a: Terms, b: Terms) -> Dim:
    poly = dict(a)
    for m, k in b:
        v = poly.get(m, 0) + k
        if v:
            poly[m] = v
        else:
            del poly[m]
    return _from_dict(poly)


def _scale(s: Sym, k: int) -> Dim:
    if k == 1:
        return s
    if k == 0:
        return 0
    return _mk(tuple([(m, c * k) for m, c in s._terms]))


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    if len(a) == 1 and len(b) == 1:  # the common case: one atom each
        (x, p), (y, q) = a[0], b[0]
        if x == y:
            return ((x, p + q),)
        return a + b if x < y else b + a
    powers = dict(a)
    for atom, p in b:
        powers[atom] = powers.get(atom, 0) + p
    return tuple(sorted(powers.items()))


def _mul_terms(a: Terms, b: Terms) -> Dim:
    if len(a) == 1 and len(b) == 1:  # monomial times monomial: non-zero, non-constant
        return _mk(((_mono_mul(a[0][0], b[0][0]), a[0][1] * b[0][1]),))
    poly: dict[Mono, int] = {}
    for ma, ka in a:
        for mb, kb in b:
            m = _mono_mul(ma, mb)
            k = poly.get(m, 0) + ka * kb
            if k:
                poly[m] = k
            else:
                del poly[m]
    return _from_dict(poly)


# -- floor division and modulo by an int -------------------------------------------


def _floordiv(s: Sym, c: int) -> Dim:
    if c == 0:
        raise ZeroDivisionError(f"dim {s} floor-divided by zero")
    if c < 0:
        s, c = -s, -c
    if c == 1:
        return s
    quot: dict[Mono, int] = {}
    rest: dict[Mono, int] = {}
    for m, k in s._terms:
        q, r = divmod(k, c)
        if q:
            quot[m] = q
        if r:
            rest[m] = r
    r0 = rest.pop((), 0)
    base = _from_dict(quot)
    if not rest:  # the remainder is a constant in [0, c): it floors to 0
        return base
    return base + _floor_atom(rest, r0, c)


def _floor_atom(rest: dict[Mono, int], r0: int, c: int) -> Dim:
    """floor((rest + r0) / c) for non-constant `rest` with coefficients in [0, c)."""
    g = math.gcd(c, *rest.values())
    if g > 1:  # floor((g*y + r) / (g*c')) == floor((y + r//g) / c')
        rest = {m: k // g for m, k in rest.items()}
        r0, c = r0 // g, c // g
    if len(rest) == 1:
        ((m, k),) = rest.items()
        if k == 1 and len(m) == 1 and m[0][1] == 1 and m[0][0][0] == _FLOOR:
            # floor((floor(S/a) + r0) / c) == floor((S + r0*a) / (a*c))
            _, inner, a = m[0][0]
            return _floordiv(_mk(inner) + r0 * a, a * c)  # type: ignore[arg-type]
    if r0:
        rest[()] = r0
    return _atom_dim((_FLOOR, tuple(sorted(rest.items())), c))


def _mod(s: Sym, c: int) -> Dim:
    if c == 0:
        raise ZeroDivisionError(f"dim {s} modulo zero")
    if c < 0:  # p mod -c == -((-p) mod c)
        return -_mod(-s, -c)
    if c == 1:
        return 0
    rest: dict[Mono, int] = {}
    for m, k in s._terms:
        r = k % c
        if r:
            rest[m] = r
    r0 = rest.pop((), 0)
    if not rest:
        return r0
    g = math.gcd(c, *rest.values())
    low = 0
    if g > 1:  # (g*y + r) mod (g*c') == g*((y + r//g) mod c') + r%g
        rest = {m: k // g for m, k in rest.items()}
        (r0, low), c = divmod(r0, g), c // g
    if r0:
        rest[()] = r0
    return _atom_dim((_MOD, tuple(sorted(rest.items())), c)) * g + low


# -- exact division by a Sym -------------------------------------------------------


def _exact_or_raise(a: Dim, b: Sym, op: str) -> Dim:
    q = exact_div(a, b)
    if q is None:
        raise TypeError(f"dim {a} {op} {b}: a symbolic divisor must divide exactly")
    return q


def _lex_key(m: Mono) -> tuple:
    """Sorts monomials in decreasing lexicographic order (a monomial order)."""
    return tuple((atom, -p) for atom, p in m) + (_LEX_END,)


def _mono_div(a: Mono, b: Mono) -> Mono | None:
    powers = dict(a)
    for atom, p in b:
        e = powers.get(atom, 0) - p
        if e < 0:
            return None
        if e:
            powers[atom] = e
        else:
            del powers[atom]
    return tuple(sorted(powers.items()))


def _poly_div(a: Terms, b: Terms) -> Dim | None:
    """a / b by multivariate division; None unless the remainder is 0 over the ints."""
    lead_b = min(b, key=lambda t: _lex_key(t[0]))
    rem = dict(a)
    quot: dict[Mono, int] = {}
    while rem:
        lead = min(rem, key=_lex_key)
        k = rem[lead]
        m = _mono_div(lead, lead_b[0])
        if m is None or k % lead_b[1]:
            return None
        q = k // lead_b[1]
        quot[m] = q
        for mb, kb in b:
            mm = _mono_mul(m, mb)
            v = rem.get(mm, 0) - q * kb
            if v:
                rem[mm] = v
            else:
                del rem[mm]
    return _from_dict(quot)


# -- symbols, substitution, evaluation ---------------------------------------------


def _terms_symbols(terms: Terms) -> Iterable[str]:
    for m, _ in terms:
        for atom, _ in m:
            if atom[0] == _SYM:
                yield atom[1]
            else:
                yield from _terms_symbols(atom[1])


def _subst_terms(terms: Terms, env: Mapping[str, Dim]) -> Dim:
    total: Dim = 0
    for m, k in terms:
        value: Dim = k
        for atom, p in m:
            value = value * _subst_atom(atom, env) ** p
        total = total + value
    return total


def _subst_atom(atom: Atom, env: Mapping[str, Dim]) -> Dim:
    if atom[0] == _SYM:
        value = env.get(atom[1])
        return sym(atom[1]) if value is None else value
    inner = _subst_terms(atom[1], env)
    return inner // atom[2] if atom[0] == _FLOOR else inner % atom[2]


def _eval_terms(terms: Terms, env: Mapping[str, int]) -> int:
    total = 0
    for m, k in terms:
        for atom, p in m:
            k *= _eval_atom(atom, env) ** p
        total += k
    return total


def _eval_atom(atom: Atom, env: Mapping[str, int]) -> int:
    if atom[0] == _SYM:
        try:
            value = env[atom[1]]
        except KeyError:
            raise ValueError(f"no value given for dim symbol {atom[1]!r}") from None
        if not isinstance(value, int):
            raise TypeError(f"dim symbol {atom[1]!r} must be given an int, got {value!r}")
        return value
    inner = _eval_terms(atom[1], env)
    return inner // atom[2] if atom[0] == _FLOOR else inner % atom[2]


# -- formatting -------------------------------------------------------------------


def _display_key(term: tuple[Mono, int]) -> tuple:
    m = term[0]
    return (-sum(p for _, p in m), m)  # higher degree first, then atom order


def _fmt_terms(terms: Terms) -> str:
    items = sorted(terms, key=_display_key)
    if items[0][1] < 0:  # lead with a positive term when there is one: `3 - T`
        for i, (_, k) in enumerate(items):
            if k > 0:
                items.insert(0, items.pop(i))
                break
    parts = []
    for i, (m, k) in enumerate(items):
        body = _fmt_mono(m, abs(k), bare=k > 0 or i > 0)
        if i == 0:
            parts.append(body if k > 0 else "-" + body)
        else:
            parts.append((" + " if k > 0 else " - ") + body)
    return "".join(parts)


def _fmt_mono(m: Mono, k: int, bare: bool) -> str:
    """A monomial times k > 0; `bare`: a lone floor/mod atom needs no parentheses."""
    if not m:
        return str(k)
    alone = bare and k == 1 and len(m) == 1
    factors = [_fmt_factor(atom, p, alone) for atom, p in m]
    if k != 1:
        factors.insert(0, str(k))
    return "*".join(factors)


def _fmt_factor(atom: Atom, p: int, alone: bool) -> str:
    text = _fmt_atom(atom)
    if atom[0] != _SYM and not (alone and p == 1):
        text = f"({text})"
    return text if p == 1 else f"{text}**{p}"


def _fmt_atom(atom: Atom) -> str:
    if atom[0] == _SYM:
        return atom[1]
    _, inner, c = atom
    op = "//" if atom[0] == _FLOOR else "%"
    num = _fmt_terms(inner)
    if len(inner) == 1 and inner[0][1] == 1 and len(inner[0][0]) == 1:
        first_atom, power = inner[0][0][0]
        if power == 1 and first_atom[0] == _SYM:
            return f"{num}{op}{c}"
    return f"({num}){op}{c}"
