"""The ONNX rules of convolution and pooling (see lower/onnx.py's `Emit`).

Each op is the ONNX op of the same meaning with torch's conventions made explicit:
`pads` from the node's window (ops/conv/__init__.py; `same` is padded as torch pads it,
the odd one after; a causal conv1d [d·(k - 1), 0]), AveragePool with `count_include_pad`
given (torch's default is 1, ONNX's 0), `ceil_mode=1` where a last window is partial
(onnxruntime drops the window that would start in the right padding, as torch does),
Resize with half_pixel coordinates for bilinear and asymmetric + floor for nearest
(what F.interpolate does with align_corners=False). Weights keep torch's layout, which is ONNX's:
Conv [M, C/group, *k], ConvTranspose [C, M/group, *k]; with weight_norm=true the weight is
computed from the initializers g and v (linear/onnx.py's `weight`).

ONNX has no adaptive pooling. Output size 1 is Global*Pool; input sizes the output divides
are a plain pool (kernel = stride = L/o); other known sizes get torch's own windows,
[⌊i·L/o⌋, ⌈(i + 1)·L/o⌉), as Slice + Reduce* per window and a Concat, one axis after the
other. A symbolic size pooled to more than 1 cannot be lowered: the windows' bounds would
be computed at run time from the shape, and an error says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...dims import Dim
from ...errors import ShapeError
from ..linear.onnx import weight
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
    """The weight (weight_norm's g·v/‖v‖ computed from g and v) and the bias."""
    w = weight(e, e.types[0].rank)  # a kernel has as many axes as the input
    return [w] + ([e.weight("bias")] if e.attr("bias") else [])


def _conv(e: Emit) -> str:
    w = _window(e)
    return e.op("Conv", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                group=e.attr("groups"), out=True)  # fmt: skip


def _conv_transpose(e: Emit) -> str:
    w = _window(e)
    extra = list(per_axis(e.node, "output_padding", 2))
    return e.op("ConvTranspose", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                output_padding=extra, group=e.attr("groups"), out=True)  # fmt: skip


def _sizes(e: Emit, w: Window, i: int) -> tuple[Dim, int | None, int | None]:
    """Axis i's output size, and for a concrete input the sizes of the floor formula and
    of the ceil formula without torch's drop of a window that would start in the right
    padding (which MaxPool and AveragePool before opset 22 infer for ceil_mode=1)."""
    size, out = e.types[0].shape[2 + i], e.type.shape[2 + i]
    if not isinstance(size, int):
        return out, None, None
    reach = size + sum(w.pads[i]) - w.span(i)
    return out, reach // w.stride[i] + 1, -(-reach // w.stride[i]) + 1


def _axes(w: Window, keep: list[bool]) -> Window:
    """The window on the kept axes only (kernel and stride 1, no padding on the others)."""
    return Window(
        tuple(k if c else 1 for k, c in zip(w.kernel, keep, strict=True)),
        tuple(s if c else 1 for s, c in zip(w.stride, keep, strict=True)),
        w.dilation,
        tuple(p if c else (0, 0) for p, c in zip(w.pads, keep, strict=True)),
    )


def _pool(op_type: str) -> Rule:
    def rule(e: Emit) -> str:
        w = _window(e)
        # count_include_pad given, as torch's default (1) is not ONNX's (0)
        attrs: dict[str, Any] = {}
        if op_type == "AveragePool":
            attrs["count_include_pad"] = int(e.attr("count_include_pad"))
        if not e.attr("ceil_mode"):
            return e.op(op_type, e.x, **_geometry(w), **attrs, out=True)
        sizes = [_sizes(e, w, i) for i in range(len(w.kernel))]
        # Where torch drops a window, the size is the floor formula's (the windows left lie
        # inside the padded input): those axes need no ceil_mode, and old opsets' shape
        # inference could not take it there.
        drops = [ceil is not None and out != ceil for out, _, ceil in sizes]
        partial = [floor is None or out != floor for out, floor, _ in sizes]
        if not any(drops) or not any(partial):
            mode: dict[str, Any] = {} if any(drops) else {"ceil_mode": 1}
            return e.op(op_type, e.x, **_geometry(w), **mode, **attrs, out=True)
        # Some axes drop a window, others end in a partial one: a pool for each group. A
        # window is a product of one per axis, and so is its maximum or its mean (torch's
        # divisor is the product of the per-axis counts, with or without the padding).
        y = e.op(op_type, e.x, **_geometry(_axes(w, [not d for d in drops])), ceil_mode=1, **attrs)
        return e.op(op_type, y, **_geometry(_axes(w, drops)), **attrs, out=True)

    return rule


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
    "maxpool1d": _pool("MaxPool"),
    "maxpool2d": _pool("MaxPool"),
    "avgpool1d": _pool("AveragePool"),
    "avgpool2d": _pool("AveragePool"),
    "adaptive_avgpool1d": _adaptive("avg"),
    "adaptive_avgpool2d": _adaptive("avg"),
    "adaptive_maxpool2d": _adaptive("max"),
    "global_avgpool": _global("ReduceMean"),
    "global_maxpool": _global("ReduceMax"),
    "upsample": _upsample,
}
