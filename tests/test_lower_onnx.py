"""The ONNX lowering, differentially: for every core op (the layer texts of its OpDef's
examples plus more, symbolic shapes included) and every spec made of them, the model passes
the full checker, ONNX shape inference agrees with the IR, and onnxruntime computes what a
numpy reference of the op's semantics (written here, independently of the lowering)
computes; onnx's own ReferenceEvaluator agrees with onnxruntime. The layer library's ops
are checked against torch.nn's modules instead (test_parity and their family's tests)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from conftest import ATOL, ROOT, RTOL, SPECS, check_layer, random_weights
from dlc import __version__
from dlc.compiler.dims import evaluate, format_dim, is_sym
from dlc.compiler.errors import ShapeError
from dlc.compiler.ir import Graph, Node
from dlc.compiler.lower import onnx as lower
from dlc.compiler.ops import REGISTRY
from dlc.compiler.pipeline import check_file, check_text

ENV = {"B": 3, "T": 5, "H": 6, "W": 6, "C": 4, "F": 7}  # values for the symbolic dims
GRAPH_MLP = next(p for p in SPECS if p.stem == "graph_mlp")

# -- the numpy reference --------------------------------------------------------------


@dataclass
class Call:
    """One node's evaluation: its inputs, its params (by local name), the symbol env."""

    node: Node
    xs: list[np.ndarray]
    p: dict[str, np.ndarray]

    @property
    def x(self) -> np.ndarray:
        return self.xs[0]

    def __getitem__(self, key: str) -> Any:
        return self.node.attr(key)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    y = x @ w.T
    return y if b is None else y + b


def _weight(p: dict[str, np.ndarray]) -> np.ndarray:
    """dense's weight, or weight_norm's g·v/‖v‖ (the norm of each row)."""
    if "weight" in p:
        return p["weight"]
    g, v = p["parametrizations.weight.original0"], p["parametrizations.weight.original1"]
    return g * v / np.linalg.norm(v, axis=1, keepdims=True)


def _prelu(c: Call) -> np.ndarray:
    w = c.p["weight"]
    if w.size > 1:
        w = w.reshape((-1,) + (1,) * (c.x.ndim - 2))
    return np.where(c.x >= 0, c.x, w * c.x)


def _gelu(c: Call) -> np.ndarray:
    x = c.x
    if c["approximate"] == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf)(x / math.sqrt(2))
    return 0.5 * x * (1 + erf)


def _softplus(c: Call) -> np.ndarray:
    bx = c["beta"] * c.x
    return np.where(bx > 20, c.x, np.log1p(np.exp(np.minimum(bx, 20))) / c["beta"])


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _rbf(c: Call) -> np.ndarray:  # directly, not by the lowering's expansion
    d2 = ((c.x[..., None, :] - c.p["centers"]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * c.p["sigma"] ** 2))


def _batchnorm(c: Call) -> np.ndarray:
    shape = (-1,) + (1,) * (c.x.ndim - 2)
    p = {k: v.reshape(shape) for k, v in c.p.items()}
    y = (c.x - p["running_mean"]) / np.sqrt(p["running_var"] + c["eps"])
    return y * p["weight"] + p["bias"] if c["affine"] else y


def _layernorm(c: Call) -> np.ndarray:
    mu, var = c.x.mean(-1, keepdims=True), c.x.var(-1, keepdims=True)
    y = (c.x - mu) / np.sqrt(var + c["eps"])
    return y * c.p["weight"] + c.p["bias"] if c["affine"] else y


def _flatten(c: Call) -> np.ndarray:
    r = c.x.ndim
    s, e = c["start"] % r, c["end"] % r
    return c.x.reshape(c.x.shape[:s] + (-1,) + c.x.shape[e + 1 :])


def _reshape(c: Call) -> np.ndarray:
    return c.x.reshape([evaluate(d, ENV) if is_sym(d) else d for d in c["shape"]])


def _standardize(c: Call) -> np.ndarray:
    centred = c.x - c.p["shift"]
    if c["method"] == "zca":
        return centred @ c.p["whiten"].T
    return centred / c.p["scale"]


def _highway(c: Call) -> np.ndarray:
    x, h = c.xs
    t = _sigmoid(_linear(x, c.p["weight"], c.p["bias"]))
    return t * h + (1 - t) * x


def _fold(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[Call], np.ndarray]:
    def ref(c: Call) -> np.ndarray:
        acc = c.xs[0]
        for other in c.xs[1:]:
            acc = fn(acc, other)
        return acc

    return ref


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # torch's

REFERENCE: dict[str, Callable[[Call], np.ndarray]] = {
    "dense": lambda c: _linear(c.x, _weight(c.p), c.p.get("bias")),
    "identity": lambda c: c.x,
    "step": lambda c: (c.x >= 0).astype(c.x.dtype),
    "sigmoid": lambda c: _sigmoid(c.x),
    "tanh": lambda c: np.tanh(c.x),
    "lecun_tanh": lambda c: 1.7159 * np.tanh(2 * c.x / 3),
    "soboleva_tanh": lambda c: (
        (np.exp(c["a"] * c.x) - np.exp(-c["b"] * c.x))
        / (np.exp(c["c"] * c.x) + np.exp(-c["d"] * c.x))
    ),
    "relu": lambda c: np.maximum(c.x, 0),
    "leaky_relu": lambda c: np.where(c.x >= 0, c.x, c["slope"] * c.x),
    "prelu": _prelu,
    "gelu": _gelu,
    "elu": lambda c: _elu(c.x, c["alpha"]),
    "selu": lambda c: SELU_SCALE * _elu(c.x, SELU_ALPHA),
    "silu": lambda c: c.x * _sigmoid(c.x),
    "gaussian": lambda c: np.exp(-(c.x**2)),
    "softplus": _softplus,
    "softmax": lambda c: _softmax(c.x, c["axis"]),
    "log_softmax": lambda c: np.log(_softmax(c.x, c["axis"])),
    "maxout": lambda c: c.x.reshape(c.x.shape[:-1] + (-1, c["pieces"])).max(-1),
    "rbf": _rbf,
    "polynomial": lambda c: np.concatenate([c.x**k for k in range(1, c["degree"] + 1)], -1),
    "fourier": lambda c: np.concatenate(
        [fn(k * c.x) for fn in (np.sin, np.cos) for k in range(1, c["n"] + 1)], -1
    ),
    "dropout": lambda c: c.x,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "flatten": _flatten,
    "reshape": _reshape,
    "permute": lambda c: np.transpose(c.x, c["dims"]),
    "standardize": _standardize,
    "add": _fold(np.add),
    "mul": _fold(np.multiply),
    "concat": lambda c: np.concatenate(c.xs, axis=c["axis"]),
    "residual_add": _fold(np.add),
    "highway_gate": _highway,
}


def run_reference(
    graph: Graph, weights: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Every value of the graph, computed in float64 by REFERENCE."""
    env = {k: v.astype(np.float64) for k, v in feeds.items()}
    for node in graph.nodes:
        params = {
            p.name: weights[f"{node.name}.{p.name}"].astype(np.float64)
            for p in node.params
            if p.name != "num_batches_tracked"
        }
        env[node.name] = REFERENCE[node.op](Call(node, [env[i] for i in node.inputs], params))
    return env


# -- inputs, weights, running -------------------------------------------------------



def random_inputs(graph: Graph, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in graph.inputs:
        shape = [evaluate(d, ENV) for d in i.type.shape]
        x = (2 * rng.standard_normal(shape)).astype(np.float32)
        x.flat[0] = 0.0  # step's edge, and softplus/relu's
        feeds[i.name] = x
    return feeds


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def atol_for(graph: Graph) -> float:
    """A float32 dot product of n terms is off by about √n·eps; widen atol for long ones."""
    ends = [t.shape[-1] for t in graph.types().values() if t.rank]
    width = max((d for d in ends if isinstance(d, int)), default=1)
    return ATOL * max(1.0, math.sqrt(width / 64))


def inferred_outputs(model: onnx.ModelProto) -> dict[str, list[int | str | None]]:
    """The output dims ONNX shape inference finds, with the declared output shapes
    cleared first (so they are inferred, not read back)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    out = {}
    for o in m.graph.output:
        t = o.type.tensor_type
        assert t.HasField("shape"), f"shape inference found no shape for {o.name}"
        out[o.name] = [_dim(d) for d in t.shape.dim]
    return out


def _dim(d: onnx.TensorShapeProto.Dimension) -> int | str | None:
    if d.HasField("dim_value"):
        return d.dim_value
    unknown = not d.dim_param or d.dim_param.startswith("unk__")  # inference's own names
    return None if unknown else d.dim_param


def assert_inference_agrees(model: onnx.ModelProto, graph: Graph) -> None:
    types = graph.types()
    for name, dims in inferred_outputs(model).items():
        value = dict(graph.outputs).get(name, name)
        want = types[value].shape
        assert len(dims) == len(want), f"{name}: rank {len(dims)}, IR says {want}"
        for got, d in zip(dims, want, strict=True):
            if isinstance(d, int):
                assert got == d, f"{name}: inferred {dims}, IR says {list(want)}"
            else:
                assert got in (None, format_dim(d)), f"{name}: inferred {dims}, IR says {want}"


def check_all(graph: Graph, opset: int = lower.DEFAULT_OPSET, evaluator: bool = True) -> None:
    """Lower, check, infer shapes, run in ORT against the numpy reference (and the
    ReferenceEvaluator against ORT)."""
    weights = random_weights(graph)
    model = lower.to_onnx(graph, weights, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    assert_inference_agrees(model, graph)
    feeds = random_inputs(graph)
    got = session(model).run(None, feeds)
    want = run_reference(graph, weights, feeds)
    atol = atol_for(graph)
    for (name, value), y in zip(graph.outputs, got, strict=True):
        np.testing.assert_allclose(y, want[value], rtol=RTOL, atol=atol, err_msg=name)
    if evaluator:
        ref = ReferenceEvaluator(model).run(None, feeds)
        for (name, _), a, b in zip(graph.outputs, ref, got, strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=atol, err_msg=name)


# -- the op table -------------------------------------------------------------------

# More cases than test_registry's: other ranks, symbolic dims, the branches of each rule.
EXTRA: dict[str, list[tuple[str, str]]] = {
    "dense": [("dense(3)", "[5]"), ("dense(4, bias=false)", "[B, T, H, 6]")],
    "prelu": [("prelu(num_parameters=4)", "[B, 4, T]"), ("prelu", "[B, C, H, W]")],
    "softplus": [("softplus(beta=10)", "[B, 3]"), ("softplus(beta=0.5)", "[B, T, 3]")],
    "leaky_relu": [("leaky_relu", "[B, T, 3]")],
    "elu": [("elu", "[B, 4]")],
    "gelu": [("gelu(approximate=tanh)", "[B, T, 3]")],
    "softmax": [("softmax(axis=0)", "[B, 4]")],
    "log_softmax": [("log_softmax(axis=1)", "[B, T, 5]")],
    "maxout": [("maxout(3)", "[B, T, 6]"), ("maxout(1)", "[B, 4]")],
    "rbf": [("rbf(5, sigma=2)", "[B, 32]"), ("rbf(3)", "[4]")],
    "polynomial": [("polynomial(1)", "[B, 3]"), ("polynomial(5)", "[B, T, 2]")],
    "fourier": [("fourier(1)", "[B, T, 2]")],
    "batchnorm": [
        ("batchnorm(eps=0.001)", "[B, 4, T]"),
        ("batchnorm(affine=false)", "[B, 6, H, W]"),
        ("batchnorm", "[B, 2, 3, H, W]"),
    ],
    "layernorm": [("layernorm(eps=0.001, affine=false)", "[B, 8]")],
    "flatten": [
        ("flatten", "[B, 5]"),
        ("flatten(start=0)", "[B, 3, 4]"),
        ("flatten(start=1, end=2)", "[B, C, H, 3]"),
        ("flatten(start=1, end=2)", "[B, C, H, W]"),
        ("flatten(start=-2)", "[B, T, H, 2]"),
    ],
    "reshape": [
        ("reshape([T, B, 8])", "[B, T, 8]"),
        ("reshape([B, 2, T, 4])", "[B, T, 8]"),
        ("reshape([B*T, 8])", "[B, T, 8]"),
        ("reshape([B, T, 2, C])", "[B, T, 2*C]"),
        ("reshape([H, B, W, T])", "[B, T, H, W]"),
    ],
    "permute": [("permute([2, 0, 1])", "[B, T, 3]"), ("permute([-1, 0, 1, 2])", "[B, C, H, W]")],
    "standardize": [
        ("standardize(method=minmax)", "[B, T, 4]"),
        ("standardize(method=zca)", "[B, T, 4]"),
    ],
    "add": [("add(identity, relu, tanh)", "[B, T, 3]")],
    "mul": [("mul(identity, sigmoid, tanh)", "[B, 3]")],
    "concat": [("concat(identity, relu, identity, axis=0)", "[B, 3]")],
    "residual_add": [("residual(dense(8) -> relu)", "[B, T, 8]")],
    "highway_gate": [("highway(dense(8), gate_bias=-1)", "[B, T, 8]")],
}

# The ops with a float64 numpy reference here: the core ops. The layer library's ops
# (convolutions, recurrent nets, attention, ...) are checked against their torch.nn
# modules instead (test_parity runs every example through torch, onnxruntime and
# onnx's reference evaluator), as are the specs that use them.
SHAPES = {  # each op's own examples
    name: [(e.layer, e.shape) for e in opdef.examples if e.parity]
    for name, opdef in REGISTRY.items()
}
OP_CASES = [
    (op, layer, shape)
    for table in (SHAPES, EXTRA)
    for op, cases in table.items()
    if REGISTRY[op].kind == "op" and op in REFERENCE
    for layer, shape, *_ in cases
]
REFERENCE_SPECS = [p for p in SPECS if {n.op for n in check_file(p).graph.nodes} <= set(REFERENCE)]


def test_every_op_has_an_onnx_rule_and_the_core_ops_a_reference() -> None:
    ops = {name for name, d in REGISTRY.items() if d.kind == "op"}
    at_inference = {name for name in ops if not REGISTRY[name].inference_identity}
    assert set(lower.ONNX_RULES) == at_inference  # the others are no node at all
    assert set(REFERENCE) <= ops
    assert {op for op, _, _ in OP_CASES} == set(REFERENCE)
    assert len(REFERENCE_SPECS) >= 5  # the MLP examples


@pytest.mark.parametrize(
    ("op", "layer", "shape"), OP_CASES, ids=[f"{c[1]}:{c[2]}" for c in OP_CASES]
)
def test_op(op: str, layer: str, shape: str) -> None:
    graph = check_layer(layer, shape).graph
    assert op in {n.op for n in graph.nodes}
    check_all(graph)


@pytest.mark.parametrize("opset", list(lower.supported_opsets()))
def test_every_op_at_every_opset(opset: int) -> None:
    """One model per op case at each opset: the IR version is one ORT loads, and the
    opset-dependent forms (Reduce* axes from 18, Gelu from 20) compute the same."""
    for _, layer, shape in OP_CASES:
        graph = check_layer(layer, shape).graph
        model = lower.to_onnx(graph, random_weights(graph), opset=opset)
        assert model.ir_version == lower.ir_version_for(opset)
        assert model.opset_import[0].version == opset
        onnx.checker.check_model(model, full_check=True)
        weights, feeds = random_weights(graph), random_inputs(graph)
        (got,) = session(model).run(None, feeds)
        want = run_reference(graph, weights, feeds)[graph.outputs[0][1]]
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol_for(graph), err_msg=layer)
        if opset == lower.supported_opsets()[-1]:  # Gelu and the newest op versions
            (ref,) = ReferenceEvaluator(model).run(None, feeds)
            np.testing.assert_allclose(ref, got, rtol=RTOL, atol=atol_for(graph), err_msg=layer)


@pytest.mark.parametrize("path", REFERENCE_SPECS, ids=[p.stem for p in REFERENCE_SPECS])
def test_spec(path) -> None:  # noqa: ANN001
    graph = check_file(path).graph
    check_all(graph, evaluator=True)


MULTI = """dlc: 1
name: multi
inputs:
  x: [B, T, 3]
  z: [T, 1]
model:
  a: x + z
  m: mul(x, z, a)
  y: concat(a, m, axis=1)
outputs: {out: y, m: m}
"""


def test_broadcasting_and_several_outputs() -> None:
    graph = check_text(MULTI).graph
    check_all(graph)
    model = lower.to_onnx(graph, {})
    assert [o.name for o in model.graph.output] == ["out", "m"]
    assert [i.name for i in model.graph.input] == ["x", "z"]
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["B", "2*T", 3]  # symbolic dims as dim_param, in the IR's text


def test_symbolic_dims_are_dim_params() -> None:
    graph = check_layer("dense(8)", "[B, T, 4]").graph
    model = lower.to_onnx(graph, random_weights(graph))
    (x,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["B", "T", 4]
    (y,) = model.graph.output
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["B", "T", 8]


def test_initializers_are_named_like_the_weights() -> None:
    graph = check_file(GRAPH_MLP).graph
    weights = random_weights(graph)
    names = {t.name for t in lower.to_onnx(graph, weights).graph.initializer}
    assert {n for n in names if ".__" not in n} == set(weights)  # gelu adds constants
    # constants of the lowering's own (norms without affine) live under their node
    graph = check_layer("batchnorm(affine=false) -> layernorm(affine=false)", "[B, 4]").graph
    weights = random_weights(graph)
    names = {t.name for t in lower.to_onnx(graph, weights).graph.initializer}
    keys = {k for k in weights if not k.endswith("num_batches_tracked")}
    assert keys <= names
    assert sorted(names - keys) == [
        "batchnorm.__ones",
        "batchnorm.__zeros",
        "layernorm.__ones",
        "layernorm.__zeros",
    ]


def test_extra_outputs_metadata_and_doc() -> None:
    graph = check_file(GRAPH_MLP).graph
    weights, feeds = random_weights(graph), random_inputs(graph)
    model = lower.to_onnx(
        graph,
        weights,
        extra_outputs=[("features", "s.layernorm"), ("h.relu", "r.relu"), ("x_copy", "x")],
        metadata={"spec": "graph_mlp", "classes": "10"},
        doc="a graph MLP",
    )
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["y", "features", "h.relu", "x_copy"]
    assert {p.key: p.value for p in model.metadata_props} == {"spec": "graph_mlp", "classes": "10"}
    assert model.doc_string == "a graph MLP"
    assert (model.producer_name, model.producer_version) == ("dlc", __version__)
    got = dict(
        zip(["y", "features", "h.relu", "x_copy"], session(model).run(None, feeds), strict=True)
    )
    want = run_reference(graph, weights, feeds)
    # "h.relu" is an output name here, so the IR value h.relu is renamed inside the model
    for name, value in [("y", "y.dense"), ("features", "s.layernorm"), ("h.relu", "r.relu")]:
        np.testing.assert_allclose(got[name], want[value], rtol=RTOL, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(got["x_copy"], feeds["x"])


def test_outputs_that_swap_names() -> None:
    text = MULTI.replace("outputs: {out: y, m: m}", "outputs: {a: m, m: a}")
    graph = check_text(text).graph
    model = lower.to_onnx(graph, {})
    onnx.checker.check_model(model, full_check=True)
    feeds = random_inputs(graph)
    a, m = session(model).run(["a", "m"], feeds)
    want = run_reference(graph, {}, feeds)
    np.testing.assert_allclose(a, want["m"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(m, want["a"], rtol=RTOL, atol=ATOL)


def test_missing_weight_is_a_key_error_naming_it() -> None:
    graph = check_layer("dense(4) -> layernorm", "[B, 3]").graph
    weights = random_weights(graph)
    del weights["layernorm.bias"]
    with pytest.raises(KeyError, match=r"layernorm\.bias"):
        lower.to_onnx(graph, weights)


def test_unsupported_opset_is_refused() -> None:
    with pytest.raises(ValueError, match="opset 16"):
        lower.to_onnx(check_layer("relu", "[B, 3]").graph, {}, opset=16)


def test_ir_versions() -> None:
    assert lower.supported_opsets()[0] == lower.DEFAULT_OPSET == 17
    assert lower.ir_version_for(17) == 8  # onnx 1.12, the first with opset 17
    versions = [lower.ir_version_for(o) for o in lower.supported_opsets()]
    assert versions == sorted(versions)


# -- the patterns onnxruntime runs fast ---------------------------------------------


def op_types(layer: str, shape: str, opset: int = lower.DEFAULT_OPSET) -> list[str]:
    graph = check_layer(layer, shape).graph
    model = lower.to_onnx(graph, random_weights(graph), opset=opset)
    # the Identity that names the output "y" (the IR value is the layer's name) is left out
    return [n.op_type for n in model.graph.node if not n.name.endswith(".__output")]


def test_efficient_patterns() -> None:
    assert op_types("dense(8)", "[B, 4]") == ["Gemm"]
    assert op_types("dense(8)", "[B, T, 4]") == ["Transpose", "MatMul", "Add"]
    assert op_types("layernorm", "[B, T, 8]") == ["LayerNormalization"]
    assert op_types("batchnorm", "[B, 8]") == ["BatchNormalization"]
    assert op_types("flatten", "[B, C, H, W]") == ["Flatten"]
    assert op_types("gelu", "[B, 8]", opset=20) == ["Gelu"]
    assert "Erf" in op_types("gelu", "[B, 8]", opset=17)
    assert op_types("reshape([B, 1, 28, 28])", "[B, 784]") == ["Reshape"]
    assert op_types("maxout(2)", "[B, T, 8]") == ["Reshape", "ReduceMax"]


def test_onnxruntime_fuses_the_gelu_pattern(tmp_path) -> None:  # noqa: ANN001
    graph = check_layer("gelu", "[B, 8]").graph
    model = lower.to_onnx(graph, {}, opset=17)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert fused == ["Gelu"]


def test_reshape_beyond_the_input_dims_is_a_located_error() -> None:
    """[B, T, H, W] -> [B*H, T*W]: neither dim is a run of the input's axes, and only
    one can be -1."""
    graph = check_layer("reshape([B*H, T*W])", "[B, T, H, W]").graph
    with pytest.raises(ShapeError) as info:
        lower.to_onnx(graph, {})
    assert "cannot lower a reshape of [B, T, H, W] to [B*H, T*W]" in info.value.render()
    assert info.value.loc is not None and info.value.loc.line == 6


def test_nodes_only_an_unrequested_export_output_needs_are_left_out() -> None:
    checked = check_file(ROOT / "specs" / "digits_mlp.yaml")  # export: probs = softmax(logits)
    weights = random_weights(checked.graph)
    plain = lower.to_onnx(checked.graph, weights)
    assert "Softmax" not in {n.op_type for n in plain.graph.node}
    full = lower.to_onnx(checked.graph, weights, extra_outputs=checked.export_outputs)
    assert "Softmax" in {n.op_type for n in full.graph.node}
    assert [o.name for o in full.graph.output] == ["logits", "probs"]
