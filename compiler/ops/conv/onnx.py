"""The ONNX rules of convolution and pooling (see lower/onnx.py's `Emit`).

Each op is the ONNX op of the same meaning with torch's conventions made explicit:
`pads` from the node's window (ops/conv/__init__.py; `same` is padded as torch pads it, the odd
one after), AveragePool with `count_include_pad` given (torch's default is 1, ONNX's 0),
`ceil_mode=1` where asked (onnxruntime drops the window that would start in the right
padding, as torch does), Resize with half_pixel coordinates for bilinear and asymmetric +
floor for nearest (what F.interpolate does with align_corners=False). Weights keep
torch's layout, which is ONNX's: Conv [M, C/group, *k], ConvTranspose [C, M/group, *k].

ONNX has no adaptive pooling. Output size 1 is Global*Pool; input sizes the output divides
are a plain pool (kernel = stride = L/o); other known sizes get torch's own windows,
[⌊i·L/o⌋, ⌈(i + 1)·L/o⌉), as Slice + Reduce* per window and a Concat, one axis after the
other. A symbolic size pooled to more than 1 cannot be lowered: the windows' bounds would
be computed at run time from the shape, and an error says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ShapeError
from . import AXES, Window, adaptive_sizes, per_axis, upsample_scales, window

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _window(e: Emit) -> Window:
    return window(e.node, e.types[0].rank - 2)


def _pads(w: Window) -> list[int]:
    """ONNX's `pads`: every axis's begin, then every axis's end."""
    return [b for b, _ in w.pads] + [e for _, e in w.pads]


def _geometry(w: Window) -> dict[str, Any]:
    return {"kernel_shape": list(w.kernel), "strides": list(w.stride), "pads": _pads(w)}


def _weights(e: Emit) -> list[str]:
    return [e.weight("weight")] + ([e.weight("bias")] if e.attr("bias") else [])


def _conv(e: Emit) -> str:
    w = _window(e)
    return e.op("Conv", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                group=e.attr("groups"), out=True)  # fmt: skip


def _conv_transpose(e: Emit) -> str:
    w = _window(e)
    extra = list(per_axis(e.node, "output_padding", 2))
    return e.op("ConvTranspose", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                output_padding=extra, group=e.attr("groups"), out=True)  # fmt: skip


def _ceil(e: Emit) -> dict[str, Any]:
    """ceil_mode only where set: the models of pools without it stay as they were."""
    return {"ceil_mode": 1} if e.attr("ceil_mode") else {}


def _maxpool(e: Emit) -> str:
    return e.op("MaxPool", e.x, **_geometry(_window(e)), **_ceil(e), out=True)


def _avgpool(e: Emit) -> str:
    return e.op("AveragePool", e.x, **_geometry(_window(e)), **_ceil(e),
                count_include_pad=int(e.attr("count_include_pad")), out=True)  # fmt: skip


def _adaptive(kind: str) -> Rule:
    pool, reduce = ("MaxPool", "ReduceMax") if kind == "max" else ("AveragePool", "ReduceMean")

    def rule(e: Emit) -> str:
        spatial = e.types[0].shape[2:]
        sizes = adaptive_sizes(e.node, len(spatial))
        if all(o == 1 for o in sizes):
            return e.op(f"Global{pool}", e.x, out=True)
        if all(isinstance(d, int) and d % o == 0 for d, o in zip(spatial, sizes, strict=True)):
            kernel = [d // o for d, o in zip(spatial, sizes, strict=True) if isinstance(d, int)]
            return e.op(pool, e.x, kernel_shape=kernel, strides=kernel, out=True)
        for i, (d, o) in enumerate(zip(spatial, sizes, strict=True)):
            if not isinstance(d, int) and o != 1:
                name = AXES[len(spatial)][i]
                raise ShapeError(
                    f"cannot lower {e.node.op} to ONNX: the input's {name} {d} is symbolic "
                    f"and pooled to {o}, but ONNX has no adaptive pooling and its windows need "
                    "a known size (the spec checks, and lowers to torch)",
                    e.node.loc,
                    f"give the input's {name} a number, or pool it to 1",
                )
        # A window is a product of one window per axis, and the mean (maximum) over it is
        # that along one axis of the means (maxima) along the others: one axis at a time
        steps = [(2 + i, d, o) for i, (d, o) in enumerate(zip(spatial, sizes, strict=True))
                 if d != o]  # fmt: skip
        x = e.x
        for j, (axis, d, o) in enumerate(steps):
            last = j == len(steps) - 1
            if o == 1:
                x = e.reduce(reduce, x, [axis], keepdims=True, out=last)
                continue
            assert isinstance(d, int)  # checked above: only an axis pooled to 1 is symbolic
            cells = []
            for i in range(o):
                start, end = i * d // o, -(-(i + 1) * d // o)
                part = e.op("Slice", x, e.ints([start], "starts"), e.ints([end], "ends"),
                            e.ints([axis], "axes"))  # fmt: skip
                cells.append(e.reduce(reduce, part, [axis], keepdims=True))
            x = e.op("Concat", *cells, axis=axis, out=last)
        return x

    return rule


def _global(op_type: str) -> Rule:
    """A reduction over the spatial axes 2.. without keepdims: [B, C] directly, where
    Global*Pool would keep [B, C, 1, ...] (and onnx's reference GlobalMaxPool reduces the
    wrong axes below rank 4)."""

    def rule(e: Emit) -> str:
        axes = range(2, e.types[0].rank)
        return e.reduce(op_type, e.x, axes, keepdims=False, out=True)

    return rule


def _upsample(e: Emit) -> str:
    rank = e.types[0].rank
    factors = [1.0, 1.0] + [float(s) for s in upsample_scales(e.node, rank)]
    # Resize takes float32 scales whatever the data's type
    scales = e.const(factors, "scales", np.float32)
    if e.attr("mode") == "bilinear":
        modes = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        modes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}  # fmt: skip
    return e.op("Resize", e.x, "", scales, **modes, out=True)


ONNX_RULES: dict[str, Rule] = {
    "conv1d": _conv,
    "conv2d": _conv,
    "conv_transpose2d": _conv_transpose,
    "maxpool1d": _maxpool,
    "maxpool2d": _maxpool,
    "avgpool1d": _avgpool,
    "avgpool2d": _avgpool,
    "adaptive_avgpool1d": _adaptive("avg"),
    "adaptive_avgpool2d": _adaptive("avg"),
    "adaptive_maxpool2d": _adaptive("max"),
    "global_avgpool": _global("ReduceMean"),
    "global_maxpool": _global("ReduceMax"),
    "upsample": _upsample,
}
