"""Elaboration: a typed spec becomes an untyped IR graph.

Every expression string is parsed and interpreted in one of two contexts:

- a *layer* context (`apply`): the expression is a function of an incoming tensor.
  Ops and blocks are applied to it, `->` chains, `+` adds the results of its operands,
  names of inputs and graph nodes are tensors themselves, and combinators (`residual`,
  `repeat`, ...) expand through their registry entry's `expand` rule;
- a *value* context (`value`): arguments, dims and params; arithmetic over numbers,
  params and symbolic dims is exact; a bare unknown word is a string (`padding=same`).

Names resolve through `Env`s: block arguments, then params, then the model's tensors,
blocks and ops. Block arguments are `Thunk`s (an expression and the environment it was
written in), evaluated where they are used, so a block argument may be a number or a
whole sub-network. IR node names follow the spec's structure: graph node names, and
for the ops inside them the op name with a counter (`stem.conv2d_1`, `repeat.0.dense`).

Independent mistakes are collected: a failing layer is reported and elaboration goes
on with the layer skipped, so one run lists every unknown name and bad argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from . import dims as D
from .arith import compute, describe_value
from .errors import Collector, DlcError, ElaborationError, ExprSyntaxError, Loc, did_you_mean
from .inits import INIT_ALIASES, INITS
from .ir import Graph, GraphInput, InitSpec, Node, TensorType
from .lower.torch_names import TORCH_ATTRIBUTES
from .ops.registry import BODY, REGISTRY, REQUIRED, Arg, ArgTypeError, OpDef, lookup, public_names
from .order import in_dependency_order
from .scope import CONSTANTS, Env, Reported, Scope, Thunk, Word
from .spec import Body, GraphBody, SeqBody, Spec, Text
from .syntax import (
    BinOp,
    Call,
    Expr,
    ListExpr,
    Name,
    Neg,
    Num,
    Pipe,
    Signature,
    Str,
    as_call,
    identifiers,
    parse_many,
    references,
)
from .training import TrainingPlan, check_training_calls, training_plan

MAX_BLOCK_DEPTH = 32
MAX_NESTING = 100  # layers inside layers (residual(...) in blocks in params ...)
MAX_NODES = 250_000  # IR nodes one spec may expand to (a 10,000-node spec makes ~20,000)


@dataclass
class Block:
    signature: Signature
    body: Body
    loc: Loc


class Elaborator:
    def __init__(self, spec: Spec, dims: set[str]) -> None:
        self.spec = spec
        self.dim_names = dims
        self.nodes: list[Node] = []
        self.errors = Collector(ElaborationError)
        self.blocks: dict[str, Block] = {}
        self.depth = 0
        self.apply_depth = 0
        self.param_stack: list[str] = []
        self.parsed: dict[Text, Expr | DlcError] = {}

    # ---- errors -------------------------------------------------------------------

    def fail(self, message: str, loc: Loc | None, hint: str | None = None) -> ElaborationError:
        return ElaborationError(message, loc, hint)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Report a mistake and carry on with the next independent piece."""
        try:
            yield
        except DlcError as e:
            self.errors.extend(e)
        except Reported:
            pass

    # ---- nodes --------------------------------------------------------------------

    def emit(
        self,
        op: str,
        inputs: tuple[str, ...],
        attrs: dict[str, Any],
        loc: Loc | None,
        scope: Scope,
        base: str | None = None,
    ) -> str:
        if len(self.nodes) >= MAX_NODES:
            raise self.fail(
                f"the model expands to more than {MAX_NODES:,} nodes",
                loc,
                "check the counts of repeat(...) and the sizes of nested blocks",
            )
        name = scope.full(scope.fresh(base or op))
        tensors = (a.name for a in REGISTRY[op].args if a.type.kind == "tensor")
        weights_of = tuple(attrs[k] for k in tensors if attrs.get(k) is not None)
        node = Node(name, op, inputs, tuple(sorted(attrs.items())), loc, weights_of=weights_of)
        self.nodes.append(node)
        return name

    # ---- layer context ------------------------------------------------------------

    def apply(self, e: Expr, x: str | None, env: Env, scope: Scope) -> str:
        """Elaborate `e` as a layer applied to tensor `x` (None: e must name a tensor)."""
        if self.apply_depth >= MAX_NESTING:
            raise self.fail(
                f"layers nest deeper than {MAX_NESTING} levels (combinators, blocks and "
                "params that name layers)",
                e.loc,
                "flatten the structure: use repeat(n, ...)",
            )
        self.apply_depth += 1
        try:
            return self._apply(e, x, env, scope)
        finally:
            self.apply_depth -= 1

    def _apply(self, e: Expr, x: str | None, env: Env, scope: Scope) -> str:
        if isinstance(e, Pipe):
            v = self.apply(e.stages[0], x, env, scope)
            for stage in e.stages[1:]:
                if isinstance(stage, Name) and env.tensor(stage.id) is not None:
                    raise self.fail(
                        f"'{stage.id}' is a tensor, not a layer: '-> {stage.id}' would drop "
                        "what flows into it",
                        stage.loc,
                        f"to combine them write '+ {stage.id}' or concat(..., {stage.id})",
                    )
                v = self.apply(stage, v, env, scope)
            return v
        if isinstance(e, BinOp) and e.op == "+":
            terms = list(_sum_terms(e))
            values = tuple(self.apply(t, x, env, scope) for t in terms)
            return self.emit("add", values, {}, e.loc, scope)
        if isinstance(e, Name):
            return self.apply_name(e, x, env, scope)
        if isinstance(e, Call):
            return self.apply_call(e, x, env, scope)
        what = {Num: "a number", Str: "a string", ListExpr: "a list", Neg: "a negation"}
        desc = what.get(type(e), f"the arithmetic '{e.op}'" if isinstance(e, BinOp) else "this")
        raise self.fail(
            f"expected a layer or a tensor here, got {desc}",
            e.loc,
            "tensors combine with '+' and with add(...), mul(...), concat(...)"
            if isinstance(e, BinOp)
            else None,
        )

    def apply_name(self, e: Name, x: str | None, env: Env, scope: Scope) -> str:
        tensor = env.tensor(e.id)
        if tensor is not None:
            return tensor
        found, const = env.const(e.id)
        if found:
            if isinstance(const, Thunk):
                return self.apply(const.expr, x, const.env, scope)
            if isinstance(const, str):
                with self.in_param(e.id):
                    return self.apply(self.parse_param(e.id), x, self.global_env, scope)
            raise self.fail(
                f"'{e.id}' is {describe_value(const)}, not a layer",
                e.loc,
                "a layer here is an op such as relu, or a block",
            )
        if x is None and lookup(e.id) is None and e.id not in self.blocks:
            known = sorted(env.tensors)
            raise self.fail(
                f"unknown node or input '{e.id}'{did_you_mean(e.id, known)}",
                e.loc,
                f"a pipeline here starts from one of: {', '.join(known)}" if known else None,
            )
        return self.apply_call(as_call(e), x, env, scope)

    def apply_call(self, e: Call, x: str | None, env: Env, scope: Scope) -> str:
        if x is None and e.args and isinstance(e.args[0], Name):
            # With nothing flowing in, `softmax(y)` applies to the tensor y: y -> softmax.
            tensor = env.tensor(e.args[0].id)
            opdef = lookup(e.name)
            plain_op = opdef is not None and opdef.kind == "op" and opdef.varargs is None
            if tensor is not None and (plain_op or e.name in self.blocks):
                x, e = tensor, e._replace(args=e.args[1:])
        if e.name in self.blocks:
            return self.call_block(e, x, env, scope)
        opdef = lookup(e.name)
        if opdef is None:
            found, const = env.const(e.name)
            if found and isinstance(const, Thunk) and not e.args and not e.kwargs:
                return self.apply(const.expr, x, const.env, scope)
            raise self.unknown_name(e.name, e.name_loc, env, layer=True)
        bound = self.bind(opdef.name, opdef.args, opdef.varargs, e, env, x, scope)
        if opdef.kind == "combinator":
            assert opdef.expand is not None
            return opdef.expand(self, bound, x, env, scope.child(opdef.name), e.loc)
        tensors = bound.pop("*", ())
        if opdef.varargs is None:
            if x is None:
                raise self.fail(
                    f"{opdef.name} has no input here",
                    e.loc,
                    "start the pipeline with a tensor: x -> " + opdef.name,
                )
            tensors = (x,)
        if not opdef.accepts_arity(len(tensors)):
            raise self.fail(
                f"{opdef.name} needs at least 2 tensors, got {len(tensors)}",
                e.loc,
                f"write {opdef.name}(a, b) with node names or layers",
            )
        return self.emit(opdef.name, tuple(tensors), bound, e.loc, scope)

    def unknown_name(self, name: str, loc: Loc, env: Env, *, layer: bool) -> ElaborationError:
        if layer:
            pools: tuple = (set(self.blocks) | set(env.tensors), public_names())
            kind = "op or block"
        else:
            pools = (env.names() | self.dim_names,)
            kind = "name"
        if not layer and env.tensor(name) is not None:
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
        if kind == "body":
            return Thunk(expr, env)
        if kind == "tensor":
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
            return D.sym(e.id)
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

    def preparse(self) -> None:
        """Parse the layer strings of the model and its blocks in one pass (a failure
        leaves them to `parse`, which reports each error where it is)."""
        bodies = [self.spec.model] + [b.body for b in self.spec.blocks]
        texts = [t for body in bodies for t in _texts(body) if t not in self.parsed]
        exprs = parse_many([t.value for t in texts], [t.doc.text_locator(t.path) for t in texts])
        self.parsed.update(zip(texts, exprs or (), strict=False))

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

    # ---- blocks -------------------------------------------------------------------

    def call_block(self, e: Call, x: str | None, env: Env, scope: Scope) -> str:
        block = self.blocks[e.name]
        if x is None:
            raise self.fail(
                f"block '{e.name}' has no input here",
                e.loc,
                f"start the pipeline with a tensor: x -> {e.name}",
            )
        if self.depth >= MAX_BLOCK_DEPTH:
            raise self.fail(
                f"blocks nest deeper than {MAX_BLOCK_DEPTH} (does '{e.name}' call itself?)",
                e.loc,
                "a block may not call itself",
            )
        sig = block.signature
        args = tuple(
            Arg(p.name, BODY, REQUIRED if p.default is None else Thunk(p.default, self.global_env))
            for p in sig.params
        )
        bound = self.bind(e.name, args, None, e, env, x, scope)
        inner = Env(bound, {}, self.global_env)
        self.depth += 1
        try:
            return self.body(block.body, x, inner, scope.child(e.name))
        finally:
            self.depth -= 1

    def body(self, body: Body, x: str | None, env: Env, scope: Scope) -> str:
        """A block's or the model's body: a sequential stack or a graph of named nodes."""
        if isinstance(body, SeqBody):
            v = x
            for text in body.items:
                with self.collecting():
                    v = self.apply(self.parse(text), v, env, scope)
            if v is None:
                raise self.fail("this model has no input to start from", body.loc)
            return v
        return self.graph(body, x, env, scope)

    def graph(self, body: GraphBody, x: str | None, env: Env, scope: Scope) -> str:
        tensors = dict(env.tensors)
        if x is not None:
            tensors["x"] = x
        local = Env(env.consts, tensors, env.parent)
        nodes = []
        rejected: set[str] = set()  # a bad name, reported: its users are not reported again
        for name, name_loc, text in body.nodes:
            scope.used.add(name)
            if name in tensors:
                self.errors.add(
                    f"node '{name}' is defined twice (it is already an input or a node)",
                    name_loc,
                    "give each node its own name",
                )
            elif lookup(name) is not None or name in self.blocks:
                self.errors.add(
                    f"node name '{name}' is also an op or a block", name_loc, "rename the node"
                )
            elif name in TORCH_ATTRIBUTES or name.startswith("_"):
                rejected.add(name)
                self.errors.add(
                    f"node name '{name}' is taken: torch modules have an attribute '{name}'"
                    if name in TORCH_ATTRIBUTES
                    else f"node name '{name}' starts with _, which torch keeps for itself",
                    name_loc,
                    f"rename the node, e.g. '{name.strip('_')}_node'",
                )
            else:
                with self.collecting():
                    nodes.append((name, self.parse(text)))
        ordered, failed = in_dependency_order(nodes, self.errors)
        failed |= rejected
        for name, expr in ordered:
            if any(r.id in failed for r in references(expr)):
                failed.add(name)  # it uses a node whose mistake is reported already
                continue
            with self.collecting():
                before = len(self.nodes)
                value = self.apply(expr, None, local, Scope(scope.full(name)))
                value = self.name_single(before, value, scope.full(name))
                tensors[name] = value
            if name not in tensors:
                failed.add(name)
        names = [name for name, _, _ in body.nodes]
        result = "y" if "y" in names else names[-1]  # the node named y, else the last one
        if result not in tensors:
            raise Reported()
        if env is self.global_env:
            env.tensors.update(tensors)  # the model's nodes, for `outputs:`
        return tensors[result]

    def name_single(self, before: int, value: str, name: str) -> str:
        """A graph node that is one op takes the node's own name (`y.weight`, not y.dense)."""
        if len(self.nodes) == before + 1 and self.nodes[-1].name == value:
            node = self.nodes[-1]
            self.nodes[-1] = replace(node, name=name)
            return name
        return value

    # ---- the whole spec -----------------------------------------------------------

    def run(self) -> Graph:
        spec = self.spec
        self.param_defs = {p.name: p for p in spec.params}
        self.global_env = Env({p.name: p.value for p in spec.params}, {})
        self.default_init: InitSpec | None = None
        if spec.training is not None and spec.training.init is not None:
            with self.collecting():
                self.default_init = self.init_spec(spec.training.init.parse(), self.global_env)
        calls = check_training_calls(self)
        self.preparse()
        inputs = self.inputs()
        if not inputs:
            self.errors.add(
                "the spec has no inputs",
                spec.model.loc,
                "add them, for example `inputs: {x: [B, 784]}`",
            )
            self.errors.raise_if_any()
        self.global_env.tensors.update((i.name, i.name) for i in inputs)
        self.define_blocks()
        root = Scope("", {i.name for i in inputs})
        first = inputs[0].name if isinstance(spec.model, SeqBody) and len(inputs) == 1 else None
        last = None
        with self.collecting():
            if isinstance(spec.model, GraphBody):
                last = self.graph(spec.model, None, self.global_env, root)
            else:
                last = self.body(spec.model, first, self.global_env, root)
                if last is not None and "y" not in self.global_env.tensors:
                    self.global_env.tensors["y"] = last  # a stack's result is called y
        outputs = self.outputs(last, root)
        self.extra_outputs = self.export_outputs(outputs, root)
        self.plan = training_plan(self, calls, outputs)
        self.errors.raise_if_any()
        return Graph(spec.name, tuple(inputs), tuple(self.nodes), outputs)

    def inputs(self) -> list[GraphInput]:
        out = []
        for inp in self.spec.inputs:
            shape: list[D.Dim] = []
            for d in inp.dims:
                with self.collecting():
                    shape.append(self.dim(d))
            out.append(GraphInput(inp.name, TensorType(tuple(shape), inp.dtype), inp.loc))
        return out

    def dim(self, d: int | Text) -> D.Dim:
        if isinstance(d, int):
            return d
        e = d.parse()
        if isinstance(e, Name) and e.id not in self.global_env.consts:
            return D.sym(e.id)
        v = plain(self.value(e, self.global_env))
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not (isinstance(v, int) and v >= 1 or D.is_sym(v)):
            raise self.fail(f"a dim must be a positive integer or a symbol, got {v!r}", d.loc)
        return v

    def define_blocks(self) -> None:
        for b in self.spec.blocks:
            with self.collecting():
                sig = b.signature.parse_signature()
                if sig.name in self.blocks:
                    raise self.fail(f"block '{sig.name}' is defined twice", b.loc)
                if lookup(sig.name) is not None:
                    raise self.fail(
                        f"block name '{sig.name}' is already an op", b.loc, "rename the block"
                    )
                self.blocks[sig.name] = Block(sig, b.body, b.loc)

    def outputs(self, last: str | None, root: Scope) -> tuple[tuple[str, str], ...]:
        if not self.spec.outputs:
            return (("y", last),) if last is not None else ()
        return self.named_values(self.spec.outputs, root)

    def named_values(
        self, texts: tuple[tuple[str, Text], ...], root: Scope
    ) -> tuple[tuple[str, str], ...]:
        """`name: expression` entries (outputs, export outputs) as IR values."""
        out = []
        for name, text in texts:
            with self.collecting():
                before = len(self.nodes)
                value = self.apply(self.parse(text), None, self.global_env, root.child(name))
                if len(self.nodes) > before:
                    value = self.name_single(before, value, root.full(name))
                out.append((name, value))
        return tuple(out)

    def export_outputs(
        self, outputs: tuple[tuple[str, str], ...], root: Scope
    ) -> tuple[tuple[str, str], ...]:
        """`export.outputs` (such as `probs: softmax(logits)`): more outputs of the ONNX
        model, which may use the model's outputs by name."""
        if self.spec.export is None or not self.spec.export.outputs:
            return ()
        for name, value in outputs:
            self.global_env.tensors.setdefault(name, value)
        return self.named_values(self.spec.export.outputs, root)


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


def _sum_terms(e: Expr) -> Iterator[Expr]:
    if isinstance(e, BinOp) and e.op == "+":
        yield from _sum_terms(e.left)
        yield from _sum_terms(e.right)
    else:
        yield e


def _texts(body: Body) -> Iterator[Text]:
    if isinstance(body, SeqBody):
        yield from body.items
    else:
        yield from (text for _, _, text in body.nodes)


def input_dim_names(spec: Spec) -> set[str]:
    """Identifiers in input shapes that are not params: the symbolic dims (B, T, ...)."""
    params = {p.name for p in spec.params}
    out = set()
    for inp in spec.inputs:
        for d in inp.dims:
            if isinstance(d, Text):
                for tok in identifiers(d.value):
                    if tok not in params:
                        out.add(tok)
    return out


@dataclass(frozen=True)
class Elaborated:
    graph: Graph
    default_init: InitSpec | None  # training.init
    export_outputs: tuple[tuple[str, str], ...]  # export.outputs: (name, IR value)
    training: TrainingPlan | None = None  # the checked `training:` section


def elaborate(spec: Spec) -> Elaborated:
    """The spec's model as an untyped IR graph, with the default init and the extra
    outputs of the export. Raises ElaborationError listing every mistake found."""
    el = Elaborator(spec, input_dim_names(spec))
    graph = el.run()
    return Elaborated(graph, el.default_init, el.extra_outputs, el.plan)
