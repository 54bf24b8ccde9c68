"""The IR: a small, typed, immutable dataflow graph.

Design. A `Graph` is a tuple of `Node`s in topological order, plus its inputs and its
named outputs. Every node applies one registered op (a key of `ops.REGISTRY`; this module imports
nothing from ops/, so the IR stands on its own) to the
values named in `inputs` (graph inputs or earlier nodes), with `attrs`: the op's
arguments fully bound and defaulted, as a sorted tuple of (name, value) pairs whose
values are ints, floats, strings, bools, None, `Dim`s, `InitSpec`s or tuples of them.
Everything is a frozen, slotted dataclass with tuple fields, so a pass never edits a
graph: it builds a new one (`dataclasses.replace`). Node names are dotted paths that
follow the spec's structure (`body.repeat.0.conv2d`); the lowerings use them as module
paths, so `state_dict` keys and ONNX initializer names are the same readable strings.

Elaboration produces an untyped graph (`node.type is None`); shape inference returns the
same graph with every node's output `type` and its `params` (weights and buffers with
shapes and init) filled in. `verify.py` checks the invariants after any pass, and
`format_graph` is the one canonical text form, used by `dlc check --ir`, by error
messages and by golden tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dims import Dim, format_dim, format_shape
from .errors import Loc


@dataclass(frozen=True, slots=True)
class TensorType:
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        text = format_shape(self.shape)
        return text if self.dtype == "float32" else f"{self.dtype}{text}"


@dataclass(frozen=True, slots=True)
class InitSpec:
    """An init scheme as written in a spec: `he_normal`, `normal(0, 0.01)`."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, key: str, default: Any = None) -> Any:
        return dict(self.args).get(key, default)

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={format_value(v)}' for k, v in self.args)})"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A weight (trainable) or buffer (running statistics, fitted constants) of a node."""

    name: str  # local name: weight, bias, running_mean, ...
    shape: tuple[int, ...]
    init: InitSpec
    trainable: bool = True

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class GraphInput:
    name: str
    type: TensorType
    loc: Loc | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    loc: Loc | None = field(default=None, compare=False)
    type: TensorType | None = None
    params: tuple[ParamSpec, ...] = ()
    flops: Dim = 0
    # Nodes whose weights this node reads, not their outputs: dense(tie=emb) multiplies by
    # emb's table. An edge like `inputs` (order, liveness) but no operand of the op.
    weights_of: tuple[str, ...] = ()

    def attr(self, key: str) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        raise KeyError(f"node {self.name} ({self.op}) has no attribute {key!r}")

    def typed(self, type: TensorType, params: tuple[ParamSpec, ...], flops: Dim) -> Node:
        """This node with its output type, parameters and FLOPs (shape inference's result).
        Every field is passed on here, by the class that defines them; dataclasses.replace
        does the same but costs a few times more, once per node of every check."""
        return Node(self.name, self.op, self.inputs, self.attrs, self.loc, type, params, flops,
                    self.weights_of)  # fmt: skip

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params if p.trainable)


@dataclass(frozen=True, slots=True)
class Graph:
    name: str
    inputs: tuple[GraphInput, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, value name)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def types(self) -> dict[str, TensorType]:
        """Every value's type by name (graph inputs and typed nodes)."""
        out = {i.name: i.type for i in self.inputs}
        out.update((n.name, n.type) for n in self.nodes if n.type is not None)
        return out

    @property
    def num_params(self) -> int:
        return sum(n.num_params for n in self.nodes)

    def live(self, values: tuple[str, ...] | None = None) -> set[str]:
        """Names of the nodes that the outputs (or `values`) depend on, through inputs and
        through the weights a node reads (an embedding that a tied dense uses is live)."""
        inputs = {n.name: n.inputs + n.weights_of for n in self.nodes}
        todo = list(values if values is not None else (v for _, v in self.outputs))
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in inputs and name not in seen:
                seen.add(name)
                todo.extend(inputs[name])
        return seen

    def __str__(self) -> str:
        return format_graph(self)


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, InitSpec):
        return str(v)
    return format_dim(v)


def format_node(n: Node) -> str:
    args = ", ".join(f"%{i}" for i in n.inputs)
    attrs = ", ".join(f"{k}={format_value(v)}" for k, v in n.attrs)
    call = f"{n.op}({args}{'; ' if args and attrs else ''}{attrs})"
    head = f"%{n.name}" + (f": {n.type}" if n.type is not None else "")
    line = f"  {head} = {call}"
    if n.params:
        line += "  {" + ", ".join(_format_param(p) for p in n.params) + "}"
    return line


def _format_param(p: ParamSpec) -> str:
    kind = "" if p.trainable else "buffer "
    return f"{kind}{p.name}: {list(p.shape)} {p.init}"


def format_graph(g: Graph) -> str:
    """The canonical text form of a graph."""
    ins = ", ".join(f"%{i.name}: {i.type}" for i in g.inputs)
    lines = [f"graph {g.name}({ins}) {{"]
    lines += [format_node(n) for n in g.nodes]
    outs = ", ".join(f"{name}=%{value}" for name, value in g.outputs)
    lines.append(f"  return {outs}")
    lines.append("}")
    return "\n".join(lines)
