"""Elaboration's value context: arguments, params, arithmetic and bare words.

An argument (`dense(h * 2)`, `padding=same`), a dim and a param's text are evaluated
here, by `Values.value`: numbers and strings as written, lists as tuples, arithmetic
exact over numbers and symbolic dims (arith.py), names through the `Env` (a string param
is parsed and evaluated where it is used), and a name that resolves to nothing as a
`Word`. `bind` matches a call's arguments to a signature and converts each value with its
argument's type; what it returns is plain data (a `Word` becomes its text), ready for a
node's attributes. A word where no word is allowed is an unknown name, reported where it
was written.

`Values` is the base of the `Elaborator` (elaborate.py), which adds the layer context:
a tensor argument is elaborated by its `apply`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from .arith import compute
from .dims import sym
from .errors import (
    Collector,
    Diagnostic,
    DlcError,
    ElaborationError,
    ExprSyntaxError,
    Loc,
    did_you_mean,
)
from .inits import INIT_ALIASES, INITS
from .ir import InitSpec
from .ops.registry import Arg, ArgTypeError, OpDef, public_names
from .scope import CONSTANTS, Block, Env, Reported, Scope, Thunk, Word
from .spec import ParamDef, Text
from .syntax import BinOp, Call, Expr, ListExpr, Name, Neg, Num, Str, as_call

MAX_BLOCK_DEPTH = 32  # blocks in blocks, and params that name params
MAX_CALL_NOTES = 5  # block calls listed under a mistake in a block's body


class Values(ABC):
    """The value context of one elaboration, and the error collection it shares; the
    Elaborator (elaborate.py) is the one subclass, and adds the layer context."""

    global_env: Env  # the params and the model's tensors (set when elaboration starts)
    param_defs: dict[str, ParamDef]

    def __init__(self, dims: set[str]) -> None:
        self.dim_names = dims
        self.errors = Collector(ElaborationError)
        self.blocks: dict[str, Block] = {}
        self.param_stack: list[str] = []
        self.parsed: dict[Text, Expr | DlcError] = {}
        # The block calls being elaborated, outermost first: (the call's text, its place).
        self.calls: list[tuple[str, Loc]] = []
        # The copies of `repeat(n, i -> ...)` being elaborated, outermost first: how many
        # block calls were open when each began (to order the notes), and its note.
        self.copies: list[tuple[int, Diagnostic]] = []

    @abstractmethod
    def apply(self, e: Expr, x: str | None, env: Env, scope: Scope) -> str:
        """A tensor argument's value: the layer context, which the Elaborator adds."""

    # ---- errors -------------------------------------------------------------------

    def fail(self, message: str, loc: Loc | None, hint: str | None = None) -> ElaborationError:
        return ElaborationError(message, loc, hint)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Report a mistake and carry on with the next independent piece."""
        try:
            yield
        except ExprSyntaxError as e:
            self.errors.extend(e)  # about the text itself, whichever call parsed it first
        except DlcError as e:
            self.errors.extend(e, self.call_notes())
        except Reported:
            pass

    def call_notes(self) -> tuple[Diagnostic, ...]:
        """The block calls and indexed repeat copies that led here, innermost first: a
        mistake in a block's body may be due to the arguments of one call (`repeat(n - 1,
        ...)` with n = 1), one in a repeat's body to its index. A deep chain (a block
        calling itself) shows its innermost calls only."""
        outer_first: list[Diagnostic] = []
        copies = iter(self.copies)
        copy = next(copies, None)
        for depth, (text, loc) in enumerate(self.calls):
            while copy is not None and copy[0] <= depth:
                outer_first.append(copy[1])
                copy = next(copies, None)
            outer_first.append(call_note(text, loc))
        if copy is not None:
            outer_first += [copy[1], *(note for _, note in copies)]
        notes = outer_first[::-1]
        if len(notes) > MAX_CALL_NOTES:
            more = len(notes) - MAX_CALL_NOTES
            notes[MAX_CALL_NOTES:] = [Diagnostic(f"and {more} calls further out", severity="note")]
        return tuple(notes)

    @contextmanager
    def in_copy(self, index: str, i: int, loc: Loc | None) -> Iterator[None]:
        """Elaborating copy `i` of `repeat(n, index -> ...)` (written at `loc`): a mistake
        in it gets the note `in repeat copy i = 2`, after the calls inside the copy and
        before those around the repeat, since that mistake may hold for one copy only."""
        self.copies.append((len(self.calls), copy_note(index, i, loc)))
        try:
            yield
        except ExprSyntaxError:
            raise  # about the text itself, the same in every copy
        except DlcError as e:
            notes = self.call_notes()
            diags = [d if d.notes else replace(d, notes=notes) for d in e.diagnostics]
            raise type(e)(diags) from None
        finally:
            self.copies.pop()

    def unknown_name(self, name: str, loc: Loc, env: Env, *, layer: bool) -> ElaborationError:
        if layer:
            pools: tuple = (set(self.blocks) | set(env.tensors), public_names())
            kind = "op or block"
        else:
            pools = (env.names() | self.dim_names,)
            kind = "name"
        if not layer and env.tensor(name.split(".", 1)[0]) is not None:  # x, or enc.h
            return self.fail(
                f"'{name}' is a tensor, not a value",
                loc,
                "arguments are numbers, strings, lists, params and dims",
            )
        hint = None
        if not layer:
            params = sorted(n for n in env.names() if not env.tensor(n))
            hint = f"known params: {', '.join(params)}" if params else "define it under params:"
        return self.fail(f"unknown {kind} '{name}'{did_you_mean(name, *pools)}", loc, hint)

    # ---- arguments ----------------------------------------------------------------

    def bind(
        self,
        what: str,
        args: tuple[Arg, ...],
        varargs: Arg | None,
        e: Call,
        env: Env,
        x: str | None,
        scope: Scope,
        word_locs: dict[str, Loc] | None = None,
    ) -> dict[str, Any]:
        """Match a call's arguments to a signature; check and convert each value. The
        places of the arguments written as bare words go into `word_locs` if given."""
        out: dict[str, Any] = {}
        positional = list(e.args)
        if varargs is not None:
            out["*"] = tuple(self.arg_value(varargs, a, env, x, scope) for a in positional)
            positional = []
        if len(positional) > len(args):
            extra = positional[len(args)]
            raise self.fail(
                f"{what} takes {len(args)} positional argument{'s' * (len(args) != 1)}, "
                f"got {len(positional)}",
                extra.loc,
                f"its signature is {_signature(what, args)}",
            )
        for a, expr in zip(args, positional, strict=False):
            out[a.name] = self.arg_value(a, expr, env, x, scope, word_locs)
        names = {a.name for a in args}
        for kw in e.kwargs:
            if kw.name not in names:
                raise self.fail(
                    f"{what} has no argument '{kw.name}'{did_you_mean(kw.name, names)}",
                    kw.loc,
                    f"its signature is {_signature(what, args)}",
                )
            if kw.name in out:
                raise self.fail(f"argument '{kw.name}' of {what} is given twice", kw.loc)
            a = args_by_name(args, kw.name)
            out[kw.name] = self.arg_value(a, kw.value, env, x, scope, word_locs)
        for a in args:
            if a.name not in out:
                if a.required:
                    raise self.fail(
                        f"{what} needs its argument '{a.name}'",
                        e.loc,
                        f"its signature is {_signature(what, args)}",
                    )
                out[a.name] = a.default
        return out

    def arg_value(
        self,
        a: Arg,
        expr: Expr,
        env: Env,
        x: str | None,
        scope: Scope,
        word_locs: dict[str, Loc] | None = None,
    ) -> Any:
        """An argument's value, checked and converted by its type: plain data (a `Word`
        becomes its text), a tensor's IR value, an init, or a `Thunk` for a body."""
        kind = a.type.kind
        if kind in ("body", "state"):  # a state is bound with its node (state_refs.py)
            return Thunk(expr, env)
        if kind in ("tensor", "input"):
            return self.apply(expr, x, env, scope)
        if kind == "init":
            return self.init_spec(expr, env)
        v = self.value(expr, env)
        try:
            out = a.type.coerce(plain(v))
        except ArgTypeError as err:
            if isinstance(v, Word) and not a.type.words:
                raise self.unknown_name(v.text, expr.loc, env, layer=False) from None
            raise self.fail(f"argument '{a.name}': {err}", expr.loc) from None
        if isinstance(v, Word) and word_locs is not None:
            word_locs[a.name] = v.loc
        return out

    def init_spec(self, e: Expr, env: Env) -> InitSpec | None:
        if isinstance(e, Name):
            found, const = env.const(e.id)
            if found and isinstance(const, str):
                return self.init_spec(self.parse_param(e.id), self.global_env)
            if found and isinstance(const, Thunk):
                return self.init_spec(const.expr, const.env)
            if e.id in ("none", "null", "default"):
                return None
            e = as_call(e)
        if not isinstance(e, Call):
            raise self.fail("expected an init scheme such as he_normal or normal(0, 0.01)", e.loc)
        name = INIT_ALIASES.get(e.name, e.name)
        if name not in INITS:
            raise self.fail(
                f"unknown init '{e.name}'{did_you_mean(e.name, list(INITS) + list(INIT_ALIASES))}",
                e.name_loc,
                f"inits: {', '.join(INITS)}",
            )
        bound = self.bind(name, INITS[name], None, e, env, None, Scope(""))
        return InitSpec(name, tuple(bound.items()))

    # ---- value context ------------------------------------------------------------

    def value(self, e: Expr, env: Env) -> Any:
        if isinstance(e, Num):
            return e.value
        if isinstance(e, Str):
            return e.value
        if isinstance(e, ListExpr):
            return tuple(self.value(i, env) for i in e.items)
        if isinstance(e, Neg):
            return self.arith("-", 0, self.value(e.operand, env), e)
        if isinstance(e, BinOp):
            return self.arith(e.op, self.value(e.left, env), self.value(e.right, env), e)
        if isinstance(e, Name):
            return self.name_value(e, env)
        raise self.fail(
            "expected a value (a number, a name or a list), got a layer",
            e.loc,
            "layers go in the model's pipelines, not in arguments",
        )

    def name_value(self, e: Name, env: Env) -> Any:
        found, const = env.const(e.id)
        if found:
            if isinstance(const, Thunk):
                return self.value(const.expr, const.env)
            if isinstance(const, str):
                return self.param_value(e.id)  # only params hold raw strings
            return const
        if e.id in self.dim_names:
            return sym(e.id)
        if e.id in CONSTANTS:
            return CONSTANTS[e.id]
        return Word(e.id, e.loc)

    def arith(self, op: str, a: Any, b: Any, e: Expr) -> Any:
        for v in (a, b):
            if isinstance(v, Word):
                raise self.unknown_name(v.text, v.loc, self.global_env, layer=False)
        return compute(op, a, b, e.loc)

    # ---- params -------------------------------------------------------------------

    def parse_param(self, name: str) -> Expr:
        p = self.param_defs[name]
        assert p.text is not None
        return self.parse(p.text)

    def parse(self, text: Text) -> Expr:
        """An expression string's AST, parsed once however often a block is called (a
        syntax error is reported once, too)."""
        known = self.parsed.get(text)
        if isinstance(known, DlcError):
            raise Reported()
        if known is None:
            try:
                known = self.parsed[text] = text.parse()
            except DlcError as e:
                self.parsed[text] = e
                raise
        return known

    @contextmanager
    def in_param(self, name: str) -> Iterator[None]:
        """Expanding a string param; a param that comes back to itself is an error."""
        if name in self.param_stack:
            chain = " -> ".join(self.param_stack[self.param_stack.index(name) :] + [name])
            raise self.fail(
                f"params refer to each other in a cycle: {chain}", self.param_defs[name].loc
            )
        if len(self.param_stack) >= MAX_BLOCK_DEPTH:
            raise self.fail(
                f"params refer to params more than {MAX_BLOCK_DEPTH} deep",
                self.param_defs[name].loc,
            )
        self.param_stack.append(name)
        try:
            yield
        finally:
            self.param_stack.pop()

    def param_value(self, name: str) -> Any:
        """A string param in a value context: its text evaluated as an expression."""
        try:
            expr = self.parse_param(name)
        except (ExprSyntaxError, Reported):
            return self.param_defs[name].value  # free text, not an expression
        with self.in_param(name):
            v = self.value(expr, self.global_env)
        if isinstance(v, Word) and v.text == name:
            return v.text
        return v


def call_text(e: Call) -> str:
    """A block call as it is written in the spec (`stage(1)`), for the notes that name it."""
    loc = e.loc
    if loc.source is not None and loc.end_col is not None:
        text = loc.source.line(loc.line)[loc.col - 1 : loc.end_col - 1]
        if text.strip():
            return text
    return e.name


def call_note(text: str, loc: Loc) -> Diagnostic:
    return Diagnostic(f"in the call {text}", loc, severity="note")


def copy_note(index: str, i: int, loc: Loc | None) -> Diagnostic:
    return Diagnostic(f"in repeat copy {index} = {i}", loc, severity="note")


def plain(v: Any) -> Any:
    """A value as node attributes hold it: a `Word` (in a list, too) becomes its text."""
    if isinstance(v, Word):
        return v.text
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    return v


def args_by_name(args: tuple[Arg, ...], name: str) -> Arg:
    for a in args:
        if a.name == name:
            return a
    raise KeyError(name)


def _signature(what: str, args: tuple[Arg, ...]) -> str:
    return OpDef(what, args=args, kind="combinator").signature()
