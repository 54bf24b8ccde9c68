"""The ONNX rule of gaussian_sample: μ (an `Identity`) by default; with `sample=true` a
fresh draw μ + exp(½·logvar)·ε with ε from RandomNormalLike on every run, unseeded, so
two runs of the model differ (and `dlc compile --verify` cannot compare it with torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _gaussian_sample(e: Emit) -> str:
    mu, logvar = e.inputs
    if not e.attr("sample"):
        return e.op("Identity", mu, out=True)
    eps = e.op("RandomNormalLike", mu, tag="eps")
    std = e.op("Exp", e.op("Mul", logvar, e.const(0.5, "half")), tag="std")
    return e.op("Add", mu, e.op("Mul", std, eps), out=True)


ONNX_RULES: dict[str, Rule] = {"gaussian_sample": _gaussian_sample}
