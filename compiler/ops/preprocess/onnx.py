"""The ONNX rule of standardize: a Sub and a Div, or a Sub and the whitening matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..linear.onnx import linear

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _standardize(e: Emit) -> str:
    centred = e.op("Sub", e.x, e.weight("shift"))
    if e.attr("method") == "zca":
        return linear(e, centred, e.types[0].rank, e.weight("whiten"), None, out=True)
    return e.op("Div", centred, e.weight("scale"), out=True)


ONNX_RULES: dict[str, Rule] = {"standardize": _standardize}
