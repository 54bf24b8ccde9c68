"""The ONNX rules of the layout ops, and `reshape`, which other families' rules use.

slice is Slice, whose clipping of starts and ends is Python's (for steps > 0); pad is Pad
in constant mode, its pads reordered from torch's (last axis first, a pair per axis) to
ONNX's (every axis's begin, then every end, first axis first)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...dims import Dim, dims_equal, exact_div, format_shape, product
from ...errors import ShapeError
from ...ir import TensorType

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


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


# Slice's end for "to the end": ONNX clips ends to the size, as Python does.
_END = np.iinfo(np.int64).max


def _slice(e: Emit) -> str:
    stop = e.attr("stop")
    bounds = (
        e.ints([e.attr("start")], "starts"),
        e.ints([_END if stop is None else stop], "ends"),
        e.ints([e.attr("axis") % e.types[0].rank], "axes"),
        e.ints([e.attr("step")], "steps"),
    )
    y = e.op("Slice", e.x, *bounds, out=True)
    e.declare(y, e.type)  # a symbolic size minus a start is beyond ONNX's shape inference
    return y


def onnx_pads(torch_pads: Sequence[int], rank: int) -> list[int]:
    """torch F.pad's pads, (before, after) per axis from the last, as ONNX Pad's: every
    axis's begin, then every axis's end, from the first; 0 for the axes not given."""
    pairs = [(0, 0)] * rank
    for i in range(len(torch_pads) // 2):
        pairs[rank - 1 - i] = (torch_pads[2 * i], torch_pads[2 * i + 1])
    return [b for b, _ in pairs] + [a for _, a in pairs]


def _pad(e: Emit) -> str:
    pads = e.ints(onnx_pads(e.attr("pads"), e.types[0].rank), "pads")
    y = e.op("Pad", e.x, pads, e.const(e.attr("value"), "value"), mode="constant", out=True)
    e.declare(y, e.type)
    return y


ONNX_RULES: dict[str, Rule] = {
    "flatten": _flatten,
    "reshape": lambda e: reshape(e, e.x, e.type.shape, out=True),
    "permute": _permute,
    "slice": _slice,
    "pad": _pad,
}
