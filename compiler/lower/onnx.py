"""Lowering to ONNX: the typed IR becomes an `onnx.ModelProto`, built with `onnx.helper`.

Design. One `OnnxBuilder` walks the graph in order and collects the ONNX nodes,
initializers and value infos; it owns every name in the model, so a helper value can
never clash with an IR value, a weight or an output. For each IR node it hands the op's
rule an `Emit`: the node, its inputs' ONNX names and IR types, and a few verbs (`op`,
`const`, `ints`, `weight`, `reduce`) that allocate names under the node
(`h.dense.__weight_t`) and know the target opset. The rules live in one table keyed by
op name (`ONNX_RULES`), collected from the `onnx.py` of every family in `ops.FAMILIES`;
a test proves it covers every op but those that are no node at inference (the
`inference_identity` trait: identity, dropout).

What the lowering guarantees:

* value names are the IR's (graph inputs and node names); each graph output is an ONNX
  output of that *output* name (the producing node writes it directly, or an `Identity`
  copies it when the value is also used otherwise) typed
  with the IR type, symbolic dims written as `dim_param` (`B`, `2*T`);
* weights become initializers named exactly like the weight keys (the torch
  `state_dict` keys), in torch's layout, so trained weights move by name; constants the
  lowering adds are named under their node (`{node}.__{what}`);
* the model passes `onnx.checker.check_model(full_check=True)`, ONNX shape inference
  agrees with the IR's types, and the opset and IR version are ones the installed
  onnxruntime loads (`supported_opsets`, `ir_version_for`);
* the patterns onnxruntime runs fast are emitted: `Gemm(transB=1)` for a dense layer on
  a matrix, `LayerNormalization`, `Gelu` (opset >= 20) or the erf pattern ORT fuses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ... import __version__
from ..dims import format_dim
from ..dtypes import ONNX_NAMES
from ..ir import Graph, Node, TensorType
from ..ops import FAMILIES, REGISTRY
from ..passes import prune

__all__ = ["DEFAULT_OPSET", "ir_version_for", "supported_opsets", "to_onnx"]

DEFAULT_OPSET = 17
MIN_OPSET = 17  # LayerNormalization
# Used when onnxruntime is not installed: what every onnxruntime since 1.18 loads.
_FALLBACK_OPSET, _FALLBACK_IR = 21, 10

ELEM_TYPES: dict[str, int] = {dtype: getattr(TensorProto, n) for dtype, n in ONNX_NAMES.items()}


# -- versions ---------------------------------------------------------------------


@functools.cache
def _runtime_limits() -> tuple[int, int]:
    """The highest opset and IR version the installed onnxruntime loads.

    onnxruntime has no API for these, so they are probed once: a one-`Relu` model is
    loaded at each candidate version (a millisecond each). Without onnxruntime, the
    limits of every release since 1.18 are assumed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return _FALLBACK_OPSET, _FALLBACK_IR

    def loads(opset: int, ir: int) -> bool:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = ir
        options = ort.SessionOptions()
        options.log_severity_level = 4  # the probe's refusals are expected: keep quiet
        try:
            ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception:  # noqa: BLE001 - any refusal means "not this version"
            return False
        return True

    ir = next((v for v in range(onnx.IR_VERSION, 6, -1) if loads(MIN_OPSET, v)), _FALLBACK_IR)
    top = onnx.defs.onnx_opset_version()
    opset = next((v for v in range(top, MIN_OPSET, -1) if loads(v, ir)), MIN_OPSET)
    return opset, ir


def supported_opsets() -> range:
    """The opsets this lowering emits and the installed onnxruntime runs."""
    return range(MIN_OPSET, _runtime_limits()[0] + 1)


def ir_version_for(opset: int) -> int:
    """The IR version of the first onnx release with `opset` (onnx.helper.VERSION_TABLE),
    capped at what the installed onnxruntime loads."""
    if opset not in supported_opsets():
        raise ValueError(f"opset {opset} is not supported; use one of {_span(supported_opsets())}")
    ir = min(row[1] for row in helper.VERSION_TABLE if row[2] >= opset)
    return min(ir, _runtime_limits()[1])


def _span(r: range) -> str:
    return f"{r.start}..{r.stop - 1}"


# -- building ---------------------------------------------------------------------


def elem_type(dtype: str) -> int:
    return ELEM_TYPES[dtype]


def value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) else format_dim(d) for d in t.shape]
    return helper.make_tensor_value_info(name, elem_type(t.dtype), dims)


class OnnxBuilder:
    """Collects the model's nodes, initializers and value infos; allocates its names."""

    def __init__(self, graph: Graph, weights: Mapping[str, np.ndarray], opset: int) -> None:
        self.graph = graph
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.value_infos: list[onnx.ValueInfoProto] = []
        self.types = graph.types()
        self._taken: set[str] = set(self.types) | set(weights)
        self._added: set[str] = set()  # initializers already emitted

    def reserve(self, name: str) -> None:
        """Claim `name` (a graph output's) so that no helper value takes it."""
        self._taken.add(name)

    def fresh(self, base: str) -> str:
        """A name not used anywhere in the model yet, `base` itself if possible."""
        name, k = base, 1
        while name in self._taken:
            name, k = f"{base}_{k}", k + 1
        self._taken.add(name)
        return name

    def node(
        self, op_type: str, inputs: Sequence[str], output: str, name: str, **attrs: Any
    ) -> None:
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))

    def initializer(self, name: str, array: np.ndarray) -> str:
        if name not in self._added:
            self._added.add(name)
            self.initializers.append(onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, node: Node, param: str, dtype: np.dtype) -> str:
        """The initializer of `node`'s param, named by its weight key."""
        key = f"{node.name}.{param}"
        if key in self._added:
            return key
        spec = next((p for p in node.params if p.name == param), None)
        assert spec is not None, f"{node.op} has no param {param}"
        if key not in self.weights:
            raise KeyError(f"no weight {key!r} for {node.op} node {node.name}")
        array = np.asarray(self.weights[key], dtype=dtype)
        if array.shape != spec.shape:
            raise ValueError(
                f"weight {key!r} has shape {list(array.shape)}, expected {list(spec.shape)}"
            )
        return self.initializer(key, array)


class Emit:
    """What an op's rule sees and calls: one IR node, lowered into the builder."""

    def __init__(
        self, builder: OnnxBuilder, node: Node, inputs: tuple[str, ...], out: str
    ) -> None:
        assert node.type is not None, f"{node.name} is untyped: run shape inference first"
        self.builder = builder
        self.node = node
        self.inputs: tuple[str, ...] = inputs  # the ONNX names of the node's inputs
        self.types = tuple(builder.types[i] for i in node.inputs)
        self.out = out  # the ONNX name the node's result must get
        self.type: TensorType = node.type
        self.dtype = helper.tensor_dtype_to_np_dtype(elem_type(self.types[0].dtype))

    @property
    def x(self) -> str:
        return self.inputs[0]

    @property
    def elem_type(self) -> int:
        """The ONNX element type of the node's first input."""
        return elem_type(self.types[0].dtype)

    @property
    def opset(self) -> int:
        return self.builder.opset

    def attr(self, key: str) -> Any:
        return self.node.attr(key)

    def op(self, op_type: str, *inputs: str, out: bool = False, tag: str = "", **attrs: Any) -> str:
        """Add an ONNX node; its output is the IR node's result if `out`, else a helper
        value named under the node. Returns the output's name."""
        if out:
            output, name = self.out, self.node.name
        else:
            output = name = self.builder.fresh(f"{self.node.name}.__{tag or op_type.lower()}")
        self.builder.node(op_type, inputs, output, name, **attrs)
        return output

    def const(self, value: Any, tag: str = "const", dtype: Any = None) -> str:
        """A constant initializer, in the dtype of the node's first input unless told."""
        name = self.builder.fresh(f"{self.node.name}.__{tag}")
        return self.builder.initializer(name, np.asarray(value, dtype=dtype or self.dtype))

    def ints(self, values: Sequence[int], tag: str = "shape") -> str:
        """A 1-D int64 constant (shapes, axes)."""
        name = self.builder.fresh(f"{self.node.name}.__{tag}")
        return self.builder.initializer(name, np.asarray(list(values), dtype=np.int64))

    def weight(self, param: str) -> str:
        return self.builder.weight(self.node, param, self.dtype)

    def reduce(
        self, op_type: str, x: str, axes: Sequence[int], keepdims: bool, out: bool = False
    ) -> str:
        """A Reduce* op over `axes`: an input from opset 18, an attribute before."""
        if self.opset >= 18:
            return self.op(op_type, x, self.ints(axes, "axes"), keepdims=int(keepdims), out=out)
        return self.op(op_type, x, axes=list(axes), keepdims=int(keepdims), out=out)

    def declare(self, name: str, t: TensorType) -> None:
        """Record a value's type where ONNX shape inference cannot work it out."""
        self.builder.value_infos.append(value_info(name, t))


Rule = Callable[[Emit], str]

ONNX_RULES: dict[str, Rule] = {}
for _family in FAMILIES:
    ONNX_RULES.update(import_module(f"..ops.{_family}.onnx", __package__).ONNX_RULES)


def to_onnx(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    opset: int = DEFAULT_OPSET,
    extra_outputs: Sequence[tuple[str, str]] = (),
    metadata: Mapping[str, str] = {},  # noqa: B006 - read only
    doc: str = "",
    rules: Mapping[str, Rule] | None = None,
) -> onnx.ModelProto:
    """The typed `graph` as an ONNX model with `weights` (keyed `{node}.{param}`) as its
    initializers; `extra_outputs` are more (output name, value name) pairs to expose;
    `rules` replaces ONNX_RULES (onnx_cached.py's key-value cache mode)."""
    ir_version = ir_version_for(opset)
    outputs = list(graph.outputs) + list(extra_outputs)
    b = OnnxBuilder(graph, weights, opset)
    names = _value_names(graph, outputs, b)
    # no node that no output needs
    for node in prune(graph, tuple(value for _, value in outputs)).nodes:
        if REGISTRY[node.op].inference_identity:  # no node at all
            names[node.name] = names[node.inputs[0]]
            continue
        emit = Emit(b, node, tuple(names[i] for i in node.inputs), names[node.name])
        result = (rules or ONNX_RULES)[node.op](emit)
        assert result == emit.out, f"the {node.op} rule did not produce {emit.out}"
    direct = _direct_outputs(b, outputs, names, {i.name for i in graph.inputs})
    for n in b.nodes:
        n.input[:] = [direct.get(i, i) for i in n.input]
        n.output[:] = [direct.get(o, o) for o in n.output]
    out_infos = []
    for name, value in outputs:
        if direct.get(names[value], names[value]) != name:
            b.node("Identity", [names[value]], name, b.fresh(f"{name}.__output"))
        out_infos.append(value_info(name, b.types[value]))
    in_infos = [value_info(i.name, i.type) for i in graph.inputs]
    declared = [v for v in b.value_infos if v.name not in {name for name, _ in outputs}]
    g = helper.make_graph(
        b.nodes, graph.name, in_infos, out_infos, b.initializers, value_info=declared
    )
    model = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="dlc",
        producer_version=__version__,
        doc_string=doc,
    )
    model.ir_version = ir_version
    if metadata:
        helper.set_model_props(model, dict(metadata))
    return model


def _value_names(graph: Graph, outputs: list[tuple[str, str]], b: OnnxBuilder) -> dict[str, str]:
    """The ONNX name of every IR value: its own, unless an output of another value takes
    that name, when the value is renamed (graph inputs cannot be)."""
    names = {v: v for v in b.types}
    inputs = {i.name for i in graph.inputs}
    seen: set[str] = set()
    for name, value in outputs:
        if value not in names:
            raise ValueError(f"output {name!r} names unknown value {value!r}")
        if name in seen:
            raise ValueError(f"output {name!r} is given twice")
        seen.add(name)
        b.reserve(name)
    for name, value in outputs:
        if name in names and name != value and names[name] == name:
            if name in inputs:
                raise ValueError(f"output {name!r} would hide the graph input of that name")
            names[name] = b.fresh(f"{name}.__value")
    return names


def _direct_outputs(
    b: OnnxBuilder, outputs: list[tuple[str, str]], names: dict[str, str], inputs: set[str]
) -> dict[str, str]:
    """ONNX value -> output name, for the node results that are exactly one output and
    whose type ONNX infers by itself: those are produced under the output's name, as an
    Identity per output would cost onnxruntime a copy per call."""
    count: dict[str, int] = {}
    for _, value in outputs:
        count[names[value]] = count.get(names[value], 0) + 1
    declared = {v.name for v in b.value_infos}
    return {
        names[value]: name
        for name, value in outputs
        if names[value] not in inputs and count[names[value]] == 1 and names[value] not in declared
    }
