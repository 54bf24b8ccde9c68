"""The ONNX rule of every op, in one table keyed by op name (`ONNX_RULES`).

A rule receives an `Emit` (see onnx.py) for one IR node, adds the ONNX nodes that
compute it, and returns the name of the result, which its last node writes with
`out=True`. The formulas follow the torch lowering (torch_modules.py) operation for
operation, so the two agree to float32 rounding; where ONNX has the op (`Gemm`,
`LayerNormalization`, `PRelu`, `Selu`, ...) it is used, with torch's constants.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..dims import Dim, dims_equal, exact_div, format_shape, product
from ..errors import ShapeError
from ..ir import TensorType

if TYPE_CHECKING:
    from .onnx import Emit

Rule = Callable[["Emit"], str]

# -- shared patterns ----------------------------------------------------------------


def _unary(op_type: str, **attrs: Any) -> Rule:
    return lambda e: e.op(op_type, e.x, out=True, **attrs)


def _scaled(e: Emit, x: str, k: float) -> str:
    """k·x: x itself when k == 1, its negation when k == -1."""
    if k == 1:
        return x
    return e.op("Neg", x) if k == -1 else e.op("Mul", x, e.const(k, "k"))


def linear(e: Emit, x: str, rank: int, w: str, b: str | None, out: bool) -> str:
    """x Wᵀ + b with W in torch's [out, in] layout: one Gemm on a matrix, else MatMul
    by the transposed weight (a Transpose of an initializer, which ORT folds) and Add."""
    if rank == 2:
        return e.op("Gemm", x, w, *([b] if b else []), transB=1, out=out)
    wt = e.op("Transpose", w, perm=[1, 0], tag="weight_t")
    y = e.op("MatMul", x, wt, out=out and b is None)
    return y if b is None else e.op("Add", y, b, out=out)


def reshape(e: Emit, x: str, target: Sequence[Dim], out: bool) -> str:
    """Reshape the node's first input `x` to `target` (ints and symbolic dims).

    The shape tensor is a constant where it can be: ints as they are, 0 ("copy") for a
    symbolic dim the input has on the same axis, -1 for one other. Any further symbolic
    dim is read off the input at run time (`Shape`, times or divided by a constant), and
    the result's type is declared, as ONNX shape inference cannot see through that."""
    src = e.types[0].shape
    spec: list[int | None] = []
    for i, d in enumerate(target):
        if isinstance(d, int):
            spec.append(d)
        elif i < len(src) and dims_equal(src[i], d):
            spec.append(0)
        else:
            spec.append(None)
    holes = [i for i, v in enumerate(spec) if v is None]
    if not holes:
        return e.op("Reshape", x, e.ints(_static(spec)), out=out)
    dynamic = {i: _dim_of_input(e, target[i]) for i in holes}
    unknown = [i for i, d in dynamic.items() if d is None]
    if len(unknown) > 1:
        raise ShapeError(
            f"cannot lower a reshape of {e.types[0]} to {format_shape(target)} to ONNX: "
            "more than one dim is neither a number nor made of the input's dims",
            e.node.loc,
            "write -1 for the dim to infer",
        )
    spec[(unknown or holes)[0]] = -1
    if len(holes) == 1:
        return e.op("Reshape", x, e.ints(_static(spec)), out=out)
    pieces: list[str] = []
    run: list[int] = []
    for i, v in enumerate(spec):
        if v is not None:
            run.append(v)
            continue
        if run:
            pieces.append(e.ints(run))
            run = []
        piece = dynamic[i]
        assert piece is not None
        pieces.append(piece())
    if run:
        pieces.append(e.ints(run))
    shape = e.op("Concat", *pieces, axis=0, tag="shape")
    y = e.op("Reshape", x, shape, out=out)
    e.declare(y, TensorType(tuple(target), e.type.dtype))
    return y


def _static(spec: list[int | None]) -> list[int]:
    assert all(v is not None for v in spec), "a dim left to compute at run time"
    return [v for v in spec if v is not None]


def _dim_of_input(e: Emit, d: Dim) -> Callable[[], str] | None:
    """How to compute symbolic dim `d` at run time from a run of the input's axes whose
    product is `d` times or divided by an int (a [1] int64 tensor), if there is one."""
    src = e.types[0].shape
    for j in range(len(src)):
        for k in range(j + 1, len(src) + 1):
            span = product(src[j:k])
            times, over = exact_div(d, span), exact_div(span, d)
            for factor, op_type in ((times, "Mul"), (over, "Div")):
                if isinstance(factor, int) and factor >= 1:
                    return functools.partial(_span_dim, e, j, k, factor, op_type)
    return None


def _span_dim(e: Emit, j: int, k: int, factor: int, op_type: str) -> str:
    dims = e.op("Shape", e.x, start=j, end=k, tag="dims")
    if k - j > 1:
        dims = e.op("ReduceProd", dims, keepdims=1, tag="dim")  # no axes: all
    return dims if factor == 1 else e.op(op_type, dims, e.ints([factor], "factor"))


# -- activations ----------------------------------------------------------------------


def _step(e: Emit) -> str:
    ge = e.op("GreaterOrEqual", e.x, e.const(0.0, "zero"))
    return e.op("Cast", ge, to=e.elem_type, out=True)


def _lecun_tanh(e: Emit) -> str:
    t = e.op("Tanh", _scaled(e, e.x, 2.0 / 3.0))
    return e.op("Mul", t, e.const(1.7159, "gain"), out=True)


def _soboleva_tanh(e: Emit) -> str:
    a, b, c, d = (e.attr(k) for k in "abcd")
    exp = [e.op("Exp", _scaled(e, e.x, k)) for k in (a, -b, c, -d)]
    num = e.op("Sub", exp[0], exp[1])
    den = e.op("Add", exp[2], exp[3])
    return e.op("Div", num, den, out=True)


def _gelu(e: Emit) -> str:
    tanh = e.attr("approximate") == "tanh"
    if e.opset >= 20:
        return e.op("Gelu", e.x, approximate="tanh" if tanh else "none", out=True)
    if tanh:  # 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), the pattern ORT fuses
        cube = e.op("Pow", e.x, e.const(3.0, "three"))
        inner = e.op("Add", e.x, e.op("Mul", cube, e.const(0.044715, "kappa")))
        t = e.op("Tanh", e.op("Mul", inner, e.const(math.sqrt(2 / math.pi), "beta")))
    else:  # 0.5 x (1 + erf(x / √2))
        t = e.op("Erf", e.op("Div", e.x, e.const(math.sqrt(2.0), "sqrt2")))
    one_plus = e.op("Add", t, e.const(1.0, "one"))
    return e.op("Mul", e.op("Mul", e.x, one_plus), e.const(0.5, "half"), out=True)


def _silu(e: Emit) -> str:
    return e.op("Mul", e.x, e.op("Sigmoid", e.x), out=True)


def _gaussian(e: Emit) -> str:
    return e.op("Exp", e.op("Neg", e.op("Mul", e.x, e.x)), out=True)


def _softplus(e: Emit) -> str:
    """torch's softplus: log(1 + e^(βx))/β, and x itself where βx > 20 (its threshold)."""
    beta = e.attr("beta")
    bx = _scaled(e, e.x, beta)
    soft = e.op("Softplus", bx)
    if beta != 1:
        soft = e.op("Div", soft, e.const(beta, "beta"))
    linear_part = e.op("Greater", bx, e.const(20.0, "threshold"))
    return e.op("Where", linear_part, e.x, soft, out=True)


def _prelu(e: Emit) -> str:
    """PRelu broadcasts its slope from the right: n > 1 channel slopes (axis 1) become
    [n, 1, ..., 1]; on a matrix, [n] already lines up."""
    w = e.weight("weight")
    rank = e.types[0].rank
    if e.attr("num_parameters") > 1 and rank > 2:
        w = e.op("Unsqueeze", w, e.ints(range(1, rank - 1), "axes"), tag="slope")
    return e.op("PRelu", e.x, w, out=True)


def _maxout(e: Emit) -> str:
    pieces = e.attr("pieces")
    target = e.types[0].shape[:-1] + (e.type.shape[-1], pieces)
    groups = reshape(e, e.x, target, out=False)
    return e.reduce("ReduceMax", groups, [-1], keepdims=False, out=True)


# -- basis functions ------------------------------------------------------------------


def _rbf(e: Emit) -> str:
    """exp(-‖x - c‖² / (2σ²)) with ‖x - c‖² = Σx² - 2 x·cᵀ + Σc², clamped at 0: the
    torch lowering's expansion, which turns the distances into one MatMul."""
    centers, sigma = e.weight("centers"), e.weight("sigma")
    x2 = e.reduce("ReduceSumSquare", e.x, [-1], keepdims=True)
    ct = e.op("Transpose", centers, perm=[1, 0], tag="centers_t")
    xc = e.op("MatMul", e.op("Mul", e.x, e.const(2.0, "two")), ct)
    c2 = e.reduce("ReduceSumSquare", centers, [1], keepdims=False)
    d2 = e.op("Max", e.op("Add", e.op("Sub", x2, xc), c2), e.const(0.0, "zero"))
    var2 = e.op("Mul", e.op("Mul", sigma, sigma), e.const(2.0, "two"))
    return e.op("Exp", e.op("Neg", e.op("Div", d2, var2)), out=True)


def _polynomial(e: Emit) -> str:
    powers = [e.x] + [
        e.op("Pow", e.x, e.const(float(k), f"power{k}")) for k in range(2, e.attr("degree") + 1)
    ]
    if len(powers) == 1:
        return e.op("Identity", e.x, out=True)
    return e.op("Concat", *powers, axis=-1, out=True)


def _fourier(e: Emit) -> str:
    ks = range(1, e.attr("n") + 1)
    angles = [_scaled(e, e.x, float(k)) for k in ks]
    waves = [e.op("Sin", a) for a in angles] + [e.op("Cos", a) for a in angles]
    return e.op("Concat", *waves, axis=-1, out=True)


# -- layers ---------------------------------------------------------------------------


def _dense(e: Emit) -> str:
    """x Wᵀ + b; with tie=emb, W is the initializer of emb's table (one copy in the model)."""
    b = e.weight("bias") if e.attr("bias") else None
    tie = e.attr("tie")
    w = e.b.weight(e.b.graph.node(tie), "weight", e.dtype) if tie else e.weight("weight")
    return linear(e, e.x, e.types[0].rank, w, b, out=True)


def _affine(e: Emit, n: int) -> tuple[str, str]:
    """The scale and shift of a norm layer: its weights, or constant ones and zeros."""
    if e.attr("affine"):
        return e.weight("weight"), e.weight("bias")
    return e.const([1.0] * n, "ones"), e.const([0.0] * n, "zeros")


def _batchnorm(e: Emit) -> str:
    c = e.types[0].shape[1]
    assert isinstance(c, int), "shape inference guarantees a concrete channel count"
    scale, shift = _affine(e, c)
    mean, var = e.weight("running_mean"), e.weight("running_var")
    return e.op("BatchNormalization", e.x, scale, shift, mean, var, epsilon=e.attr("eps"), out=True)


def _layernorm(e: Emit) -> str:
    f = e.types[0].shape[-1]
    assert isinstance(f, int), "shape inference guarantees a concrete feature axis"
    scale, shift = _affine(e, f)
    return e.op("LayerNormalization", e.x, scale, shift, axis=-1, epsilon=e.attr("eps"), out=True)


def _flatten(e: Emit) -> str:
    rank = e.types[0].rank
    start, end = e.attr("start") % rank, e.attr("end") % rank
    if start == end:
        return e.op("Identity", e.x, out=True)
    if start == 1 and end == rank - 1:
        return e.op("Flatten", e.x, axis=1, out=True)
    return reshape(e, e.x, e.type.shape, out=True)


def _permute(e: Emit) -> str:
    rank = e.types[0].rank
    return e.op("Transpose", e.x, perm=[d % rank for d in e.attr("dims")], out=True)


def _standardize(e: Emit) -> str:
    centred = e.op("Sub", e.x, e.weight("shift"))
    if e.attr("method") == "zca":
        return linear(e, centred, e.types[0].rank, e.weight("whiten"), None, out=True)
    return e.op("Div", centred, e.weight("scale"), out=True)


def _chain(op_type: str) -> Rule:
    """((a ∘ b) ∘ c) ..., left to right like Python's a + b + c."""

    def rule(e: Emit) -> str:
        acc = e.inputs[0]
        for i, other in enumerate(e.inputs[1:], start=2):
            acc = e.op(op_type, acc, other, out=i == len(e.inputs))
        return acc

    return rule


def _highway_gate(e: Emit) -> str:
    """x + T (h - x) with T = sigmoid(x Wᵀ + b): T h + (1 - T) x in three ops."""
    x, h = e.inputs
    gate = linear(e, x, e.types[0].rank, e.weight("weight"), e.weight("bias"), out=False)
    t = e.op("Sigmoid", gate)
    return e.op("Add", x, e.op("Mul", t, e.op("Sub", h, x)), out=True)


ONNX_RULES: dict[str, Rule] = {
    "dense": _dense,
    "identity": _unary("Identity"),
    "step": _step,
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "lecun_tanh": _lecun_tanh,
    "soboleva_tanh": _soboleva_tanh,
    "relu": _unary("Relu"),
    "leaky_relu": lambda e: e.op("LeakyRelu", e.x, alpha=e.attr("slope"), out=True),
    "prelu": _prelu,
    "gelu": _gelu,
    "elu": lambda e: e.op("Elu", e.x, alpha=e.attr("alpha"), out=True),
    "selu": _unary("Selu"),  # ONNX's default α, γ are torch's, rounded to float32
    "silu": _silu,
    "gaussian": _gaussian,
    "softplus": _softplus,
    "softmax": lambda e: e.op("Softmax", e.x, axis=e.attr("axis"), out=True),
    "log_softmax": lambda e: e.op("LogSoftmax", e.x, axis=e.attr("axis"), out=True),
    "maxout": _maxout,
    "rbf": _rbf,
    "polynomial": _polynomial,
    "fourier": _fourier,
    "dropout": _unary("Identity"),  # inference
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "flatten": _flatten,
    "reshape": lambda e: reshape(e, e.x, e.type.shape, out=True),
    "permute": _permute,
    "standardize": _standardize,
    "add": _chain("Add"),
    "mul": _chain("Mul"),
    "concat": lambda e: e.op("Concat", *e.inputs, axis=e.attr("axis"), out=True),
    "residual_add": _chain("Add"),
    "highway_gate": _highway_gate,
}


# The layer library's families keep their rules in files of their own.
from . import attention_onnx, conv_onnx, embed_onnx, generative_onnx, recurrent_onnx  # noqa: E402

for _family in (conv_onnx, recurrent_onnx, embed_onnx, attention_onnx, generative_onnx):
    ONNX_RULES.update(_family.ONNX_RULES)
