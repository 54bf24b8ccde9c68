"""The ONNX rules of the basis functions, computed as the torch modules compute them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..activations.onnx import scaled

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


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
    angles = [scaled(e, e.x, float(k)) for k in ks]
    waves = [e.op("Sin", a) for a in angles] + [e.op("Cos", a) for a in angles]
    return e.op("Concat", *waves, axis=-1, out=True)


ONNX_RULES: dict[str, Rule] = {"rbf": _rbf, "polynomial": _polynomial, "fourier": _fourier}
