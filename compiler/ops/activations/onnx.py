"""The ONNX rules of the activations, and two patterns other families use: `scaled`
(k·x) and `gelu` (the exact and tanh GELU, as ORT fuses them before opset 20).

The formulas follow the torch lowering operation for operation, so the two agree to
float32 rounding; where ONNX has the op (`PRelu`, `Selu`, ...) it is used, with torch's
constants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..shape.onnx import reshape

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _unary(op_type: str, **attrs: Any) -> Rule:
    return lambda e: e.op(op_type, e.x, out=True, **attrs)


def scaled(e: Emit, x: str, k: float) -> str:
    """k·x: x itself when k == 1, its negation when k == -1."""
    if k == 1:
        return x
    return e.op("Neg", x) if k == -1 else e.op("Mul", x, e.const(k, "k"))


def gelu(e: Emit, x: str, approximate: str, out: bool) -> str:
    """GELU of `x`: ONNX's Gelu from opset 20, else the pattern ORT fuses into one op."""
    tanh = approximate == "tanh"
    if e.opset >= 20:
        return e.op("Gelu", x, approximate="tanh" if tanh else "none", out=out)
    if tanh:  # 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
        cube = e.op("Pow", x, e.const(3.0, "three"))
        inner = e.op("Add", x, e.op("Mul", cube, e.const(0.044715, "kappa")))
        t = e.op("Tanh", e.op("Mul", inner, e.const(math.sqrt(2 / math.pi), "beta")))
    else:  # 0.5 x (1 + erf(x / √2))
        t = e.op("Erf", e.op("Div", x, e.const(math.sqrt(2.0), "sqrt2")))
    one_plus = e.op("Add", t, e.const(1.0, "one"))
    return e.op("Mul", e.op("Mul", x, one_plus), e.const(0.5, "half"), out=out)


def _step(e: Emit) -> str:
    ge = e.op("GreaterOrEqual", e.x, e.const(0.0, "zero"))
    return e.op("Cast", ge, to=e.elem_type, out=True)


def _lecun_tanh(e: Emit) -> str:
    t = e.op("Tanh", scaled(e, e.x, 2.0 / 3.0))
    return e.op("Mul", t, e.const(1.7159, "gain"), out=True)


def _soboleva_tanh(e: Emit) -> str:
    a, b, c, d = (e.attr(k) for k in "abcd")
    exp = [e.op("Exp", scaled(e, e.x, k)) for k in (a, -b, c, -d)]
    num = e.op("Sub", exp[0], exp[1])
    den = e.op("Add", exp[2], exp[3])
    return e.op("Div", num, den, out=True)


def _silu(e: Emit) -> str:
    return e.op("Mul", e.x, e.op("Sigmoid", e.x), out=True)


def _gaussian(e: Emit) -> str:
    return e.op("Exp", e.op("Neg", e.op("Mul", e.x, e.x)), out=True)


def _softplus_of(e: Emit, x: str, beta: float, out: bool) -> str:
    """torch's softplus: log(1 + e^(βx))/β, and x itself where βx > 20 (its threshold)."""
    bx = scaled(e, x, beta)
    soft = e.op("Softplus", bx)
    if beta != 1:
        soft = e.op("Div", soft, e.const(beta, "beta"))
    linear_part = e.op("Greater", bx, e.const(20.0, "threshold"))
    return e.op("Where", linear_part, x, soft, out=out)


def _softplus(e: Emit) -> str:
    return _softplus_of(e, e.x, e.attr("beta"), out=True)


def _mish(e: Emit) -> str:
    """x tanh(softplus(x)), at every opset: ONNX's Mish needs 18, dlc lowers from 17. The
    softplus is torch's, x itself above 20 (the softplus rule's graph), so no runtime's
    e^x overflows; tanh of either is 1 in float32 there, as F.mish gives."""
    soft = _softplus_of(e, e.x, 1.0, out=False)
    return e.op("Mul", e.x, e.op("Tanh", soft), out=True)


def _prelu(e: Emit) -> str:
    """PRelu broadcasts its slope from the right: n > 1 channel slopes (axis 1) become
    [n, 1, ..., 1]; on a matrix, [n] already lines up."""
    w = e.weight("weight")
    rank = e.types[0].rank
    if e.attr("num_parameters") > 1 and rank > 2:
        w = e.op("Unsqueeze", w, e.ints(range(1, rank - 1), "axes"), tag="slope")
    return e.op("PRelu", e.x, w, out=True)


def _hardtanh(e: Emit) -> str:
    """Clip with its bounds as inputs (opset >= 11), constants in the input's dtype."""
    return e.op("Clip", e.x, e.const(e.attr("min"), "min"), e.const(e.attr("max"), "max"), out=True)


def _clamp(e: Emit) -> str:
    """Clip, an absent bound as the empty name (an omitted optional input)."""
    bounds = [e.const(e.attr(k), k) if e.attr(k) is not None else "" for k in ("min", "max")]
    return e.op("Clip", e.x, *bounds, out=True)


def _maxout(e: Emit) -> str:
    pieces = e.attr("pieces")
    target = e.types[0].shape[:-1] + (e.type.shape[-1], pieces)
    groups = reshape(e, e.x, target, out=False)
    return e.reduce("ReduceMax", groups, [-1], keepdims=False, out=True)


ONNX_RULES: dict[str, Rule] = {
    "step": _step,
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "lecun_tanh": _lecun_tanh,
    "soboleva_tanh": _soboleva_tanh,
    "relu": _unary("Relu"),
    "leaky_relu": lambda e: e.op("LeakyRelu", e.x, alpha=e.attr("slope"), out=True),
    "prelu": _prelu,
    "gelu": lambda e: gelu(e, e.x, e.attr("approximate"), out=True),
    "elu": lambda e: e.op("Elu", e.x, alpha=e.attr("alpha"), out=True),
    "selu": _unary("Selu"),  # ONNX's default α, γ are torch's, rounded to float32
    "silu": _silu,
    "gaussian": _gaussian,
    "softplus": _softplus,
    "hardtanh": _hardtanh,
    "relu6": lambda e: e.op("Clip", e.x, e.const(0.0, "min"), e.const(6.0, "max"), out=True),
    # torch's hardsigmoid is relu6(x + 3) / 6: ONNX's αx + β clipped to [0, 1]
    "hardsigmoid": _unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    "hardswish": _unary("HardSwish"),  # x hardsigmoid(x), with torch's α = 1/6, β = 1/2
    "mish": _mish,
    "clamp": _clamp,
    "softmax": lambda e: e.op("Softmax", e.x, axis=e.attr("axis"), out=True),
    "log_softmax": lambda e: e.op("LogSoftmax", e.x, axis=e.attr("axis"), out=True),
    "maxout": _maxout,
}
