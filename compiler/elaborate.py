"""Elaboration: a typed spec becomes an untyped IR graph.

Every expression string is parsed and interpreted in one of two contexts:

- a *layer* context (`apply`): the expression is a function of an incoming tensor.
  Ops and blocks are applied to it, `->` chains, `+ - * /` and unary minus are elementwise
  ops (tensor_arith.py: `a * s`, `x * 0.5`), names of inputs and graph nodes are tensors
  themselves, and combinators (`residual`, `repeat`, ...) expand through their `expand` rule;
- a *value* context (`value`): arguments, dims and params; arithmetic over numbers,
  params and symbolic dims is exact; a bare unknown word is a string (`padding=same`).

Names resolve through `Env`s: block arguments, then params, then the model's tensors,
blocks and ops. Block arguments are `Thunk`s (an expression and the environment it was
written in), evaluated where they are used, so a block argument may be a number or a
whole sub-network. IR node names follow the spec's structure: graph node names, and
for the ops inside them the op name with a counter (`stem.conv2d_1`, `repeat.0.dense`).

Independent mistakes are collected: a failing layer is reported and elaboration goes
on with the layer skipped, so one run lists every unknown name and bad argument.

This module holds the layer context and the walk over the spec; the value context and
argument binding are in values.py, the order of a graph body's nodes in order.py, and the
checks of the `training:` section in training.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from .arith import describe_value
from .dims import Dim, is_sym, sym
from .errors import Diagnostic, ElaborationError, Loc, did_you_mean
from .ir import Graph, GraphInput, InitSpec, Node, TensorType
from .lower.torch_names import TORCH_ATTRIBUTES
from .ops.registry import BODY, REGISTRY, REQUIRED, Arg, lookup
from .order import in_dependency_order
from .scope import Block, Env, Reported, Scope, Thunk
from .spec import Body, GraphBody, SeqBody, Spec, Text
from .state_refs import initial_inputs, state_reference
from .syntax import (
    BinOp,
    Call,
    Expr,
    ListExpr,
    Name,
    Neg,
    Num,
    Pipe,
    Str,
    as_call,
    identifiers,
    parse_many,
    references,
)
from .tensor_arith import apply_arith
from .training import TrainingPlan, check_training_calls, training_plan
from .values import MAX_BLOCK_DEPTH, Values, call_note, call_text, plain

MAX_NESTING = 100  # layers inside layers (residual(...) in blocks in params ...)
MAX_NODES = 250_000  # IR nodes one spec may expand to (a 10,000-node spec makes ~20,000)


class Elaborator(Values):
    """Elaborates one spec (`run`); the layer context here, the value context in `Values`."""

    def __init__(self, spec: Spec, dims: set[str]) -> None:
        super().__init__(dims)
        self.spec = spec
        self.nodes: list[Node] = []
        self.apply_depth = 0
        self.failed_nodes: set[str] = set()  # the model's graph nodes that were reported
        self.clashed: set[str] = set()  # block names that are an input or a param too

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
        if isinstance(e, BinOp | Neg):
            return apply_arith(self, e, x, env, scope)
        if isinstance(e, Name):
            return self.apply_name(e, x, env, scope)
        if isinstance(e, Call):
            return self.apply_call(e, x, env, scope)
        what = {Num: "a number", Str: "a string", ListExpr: "a list"}
        raise self.fail(f"expected a layer or a tensor here, got {what[type(e)]}", e.loc)

    def apply_name(self, e: Name, x: str | None, env: Env, scope: Scope) -> str:
        if "." in e.id:  # enc.h: a part of a node's final state
            return state_reference(self, e, x, env, scope)
        if e.id in self.clashed:
            raise Reported()  # a block with another meaning too, reported where it is defined
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
        # An argument of kind "input" (attention's mask=) is a tensor that joins the
        # node's inputs after the others, in signature order, when it is given; the
        # node's attribute says whether it was. One of kind "state" (initial=) likewise
        # gives one tensor per part of a recurrent net's state (state_refs.py).
        given = [a.name for a in opdef.args if a.type.kind == "input"]
        tensors = (*tensors, *(bound[k] for k in given if bound[k] is not None))
        bound.update((k, bound[k] is not None) for k in given)
        tensors = (*tensors, *initial_inputs(self, opdef, bound, scope))
        if not opdef.accepts_arity(len(tensors)):
            need = opdef.arity if isinstance(opdef.arity, int) else f"at least {opdef.arity[0]}"
            raise self.fail(
                f"{opdef.name} needs {need} tensors, got {len(tensors)}",
                e.loc,
                f"write {opdef.name}(a, b) with node names or layers",
            )
        return self.emit(opdef.name, tuple(tensors), bound, e.loc, scope)

    # ---- blocks and bodies -------------------------------------------------------

    def call_block(self, e: Call, x: str | None, env: Env, scope: Scope) -> str:
        block = self.blocks[e.name]
        if x is None:
            raise self.fail(
                f"block '{e.name}' has no input here",
                e.loc,
                f"start the pipeline with a tensor: x -> {e.name}",
            )
        if len(self.calls) >= MAX_BLOCK_DEPTH:
            # The outermost call only: the ones inside it are the same few calls repeated.
            message = f"blocks nest deeper than {MAX_BLOCK_DEPTH} (does '{e.name}' call itself?)"
            first = call_note(*self.calls[0])
            diag = Diagnostic(message, e.loc, "a block may not call itself", notes=(first,))
            raise ElaborationError([diag])
        sig = block.signature
        args = tuple(
            Arg(p.name, BODY, REQUIRED if p.default is None else Thunk(p.default, self.global_env))
            for p in sig.params
        )
        bound = self.bind(e.name, args, None, e, env, x, scope)
        inner = Env(bound, {}, self.global_env)
        self.calls.append((call_text(e), e.loc))
        try:
            return self.body(block.body, x, inner, scope.child(e.name))
        finally:
            self.calls.pop()

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
            elif lookup(name) is not None:
                self.errors.add(
                    f"node name '{name}' is also an op or a block", name_loc, "rename the node"
                )
            elif (clash := self.clash(name, env)) is not None:
                rejected.add(name)
                meaning, kind = clash
                self.errors.add(
                    f"node name '{name}' is also {meaning}",
                    name_loc,
                    f"rename the node or the {kind}",
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
        if env is self.global_env:
            env.tensors.update(tensors)  # the model's nodes, for `outputs:`
            self.failed_nodes = failed  # reported: `outputs:` that use them are not
        if result not in tensors:
            raise Reported()
        return tensors[result]

    def clash(self, name: str, env: Env) -> tuple[str, str] | None:
        """What else a graph node's name already means (a block, a block argument, a param)
        with where that is defined, and what to call it in a hint; None if nothing. Two
        meanings for one name would make the node's users mean one or the other silently
        (a param in arguments, the node in pipelines), or look like a cycle."""
        if name in self.blocks:
            return f"a block (defined at {self.blocks[name].loc})", "block"
        if env is not self.global_env and name in env.consts:
            return "an argument of the block", "argument"
        if name in self.param_defs:
            return f"a param (defined at {self.param_defs[name].loc})", "param"
        return None

    def name_single(self, before: int, value: str, name: str) -> str:
        """A graph node that is one op takes the node's own name (`y.weight`, not y.dense)."""
        if len(self.nodes) == before + 1 and self.nodes[-1].name == value:
            node = self.nodes[-1]
            self.nodes[-1] = replace(node, name=name)
            return name
        return value

    def preparse(self) -> None:
        """Parse the layer strings of the model and its blocks in one pass (a failure
        leaves them to `parse`, which reports each error where it is)."""
        bodies = [self.spec.model] + [b.body for b in self.spec.blocks]
        texts = [t for body in bodies for t in _texts(body) if t not in self.parsed]
        exprs = parse_many([t.value for t in texts], [t.doc.text_locator(t.path) for t in texts])
        self.parsed.update(zip(texts, exprs or (), strict=False))

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
        for i in inputs:
            if i.name in self.param_defs:
                self.errors.add(
                    f"input '{i.name}' is also a param (defined at {self.param_defs[i.name].loc})",
                    i.loc,
                    "rename the input or the param",
                )
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
            shape: list[Dim] = []
            for d in inp.dims:
                with self.collecting():
                    shape.append(self.dim(d))
            out.append(GraphInput(inp.name, TensorType(tuple(shape), inp.dtype), inp.loc))
        return out

    def dim(self, d: int | Text) -> Dim:
        if isinstance(d, int):
            return d
        e = d.parse()
        if isinstance(e, Name) and "." not in e.id and e.id not in self.global_env.consts:
            return sym(e.id)
        v = plain(self.value(e, self.global_env))
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not (isinstance(v, int) and v >= 1 or is_sym(v)):
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
                clash = self.block_clash(sig.name)
                if clash is not None:
                    # Reported here; its uses as a layer are skipped, not reported again.
                    self.clashed.add(sig.name)
                    meaning, kind = clash
                    raise self.fail(
                        f"block name '{sig.name}' is also {meaning}",
                        b.loc,
                        f"rename the block or the {kind}",
                    )

    def block_clash(self, name: str) -> tuple[str, str] | None:
        """What else a block's name means (an input or a param), as in `clash`."""
        for i in self.spec.inputs:
            if i.name == name:
                return f"an input (defined at {i.loc})", "input"
        if name in self.param_defs:
            return f"a param (defined at {self.param_defs[name].loc})", "param"
        return None

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
                expr = self.parse(text)
                if any(r.id in self.failed_nodes for r in references(expr)):
                    continue  # it uses a model node whose mistake is reported already
                before = len(self.nodes)
                value = self.apply(expr, None, self.global_env, root.child(name))
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
