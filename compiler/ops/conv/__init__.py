"""The layer library, convolution and pooling: conv1d, conv2d, conv_transpose2d, max/avg
pooling, adaptive pooling, global pooling, upsample.

Layouts are channels first, as in torch: [B, C, L] for the 1-D ops, [B, C, H, W] for the
2-D ones. `kernel`, `stride`, `dilation` and `padding` take one integer for every spatial
axis or a list with one per axis. Each spatial size L maps to (p_b, p_e the padding
before and after, d the dilation, s the stride, k the kernel, floor division):

    conv, pooling     (L + p_b + p_e - d·(k - 1) - 1) // s + 1
    ceil_mode=true    (L + p_b + p_e - k + s - 1) // s + 1, or (L + p_b + s - 1) // s
                      where that is fewer: torch's last window starts inside the input
                      or its left padding (see `_ceil_slide`)
    conv_transpose    (L - 1)·s - 2p + d·(k - 1) + output_padding + 1
    adaptive pooling  the output size, whatever L
    upsample          L·scale

so a symbolic H stays symbolic: conv2d(8, 3, stride=2) on [B, 3, H, W] gives
[B, 8, (H + 1)//2 - 1, (W + 1)//2 - 1]. `padding=same` (stride 1 only, as in torch)
pads d·(k - 1) in all, the odd one after, and keeps L; `valid` pads nothing; `causal`
(conv1d only: temporal CNNs, WaveNet) pads d·(k - 1) before and nothing after, so that
output t sees inputs <= t only and stride 1 keeps L.

Parameters are torch's `weight` [filters, C/groups, *k] (conv_transpose: [C, filters/groups,
*k]; weight_norm=true: g and v instead, ops/linear/weightnorm.py) and `bias`. The channel
count must be concrete; groups must divide it and the filters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...dims import Dim
from ...errors import ShapeError
from ...ir import Node, ParamSpec, TensorType
from ..common import GLOROT_UNIFORM, ZEROS, known_channels, numel
from ..linear.weightnorm import WEIGHT_NORM, weight_params
from ..registry import (
    BOOL,
    INIT,
    NONNEG_INT,
    POS_INT,
    Arg,
    ArgType,
    OpCtx,
    OpDef,
    choice,
    list_of,
    one_of,
    register,
)
from .examples import ERRORS, EXAMPLES

SIZES = one_of(POS_INT, list_of(POS_INT, "a list of integers >= 1"))
PADS = one_of(NONNEG_INT, list_of(NONNEG_INT, "a list of integers >= 0"))
CONV_PADDING = one_of(choice("valid", "same"), PADS)
CONV1D_PADDING = one_of(choice("valid", "same", "causal"), PADS)


def _takes_causal(padding: ArgType) -> ArgType:
    """`padding`, also taking `causal` (not named in the type, so its messages stay), for
    the shape rule to say that only conv1d pads causally (`window`)."""

    def coerce(v: object) -> object:
        return v if v == "causal" else padding.coerce(v)

    return ArgType(padding.name, coerce, padding.kind, padding.words)


# The arguments conv and conv_transpose share (in signature order around the others).
FILTERS = Arg("filters", POS_INT, doc="output channels")
STRIDE = Arg("stride", SIZES, 1)
DILATION = Arg("dilation", SIZES, 1)
CONV_TAIL = (
    Arg("groups", POS_INT, 1, "channel groups; divides the channels and filters"),
    Arg("bias", BOOL, True),
    Arg("init", INIT, None, "weight init (default: training.init, else glorot_uniform)"),
    Arg("bias_init", INIT, None, "bias init (default zeros)"),
    WEIGHT_NORM,
)

AXES = {1: ("length",), 2: ("height", "width")}
LAYOUTS = {1: "[B, C, L]", 2: "[B, C, H, W]"}
FLAT_TO = {1: "reshape([B, 1, 64])", 2: "reshape([B, 1, 8, 8]) for 64 pixels"}


@dataclass(frozen=True)
class Window:
    """A sliding window over the spatial axes: per axis kernel, stride, dilation and the
    (before, after) padding."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]

    @property
    def before(self) -> tuple[int, ...]:
        return tuple(b for b, _ in self.pads)

    def span(self, i: int) -> int:
        """The input extent the dilated kernel covers on axis i: d·(k - 1) + 1."""
        return self.dilation[i] * (self.kernel[i] - 1) + 1


def _fail(node: Node, message: str, hint: str | None = None) -> ShapeError:
    return ShapeError(message, node.loc, hint)


def _shown(value: int | tuple[int, ...]) -> str:
    """An int or a list of ints as the spec writes it: 2, [2, 1]."""
    return str(value) if isinstance(value, int) else f"[{', '.join(map(str, value))}]"


def per_axis(node: Node, key: str, n: int) -> tuple[int, ...]:
    """The attribute `key` (an int, or a list of n ints) as one int per spatial axis."""
    value = node.attr(key)
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise _fail(
            node,
            f"{node.op}'s {key} {_shown(value)} has {len(value)} entries, but the op has {n} "
            f"spatial {'axis' if n == 1 else 'axes'}",
            f"give one integer for all axes or a list of {n}",
        )
    return tuple(value)


def window(node: Node, n: int) -> Window:
    """The window of a conv or pooling node with n spatial axes (stride None: the kernel,
    as pooling defaults it)."""
    attrs = node.attr_dict
    kernel = per_axis(node, "kernel", n)
    stride = kernel if attrs["stride"] is None else per_axis(node, "stride", n)
    dilation = per_axis(node, "dilation", n) if "dilation" in attrs else (1,) * n
    padding = attrs["padding"]
    if padding == "causal":
        if node.op != "conv1d":
            raise _fail(
                node,
                f"{node.op}(padding=causal) is not supported: causal padding is for conv1d, "
                "over a time axis",
                "use conv1d over [B, C, T], or give the padding as a number",
            )
        pads = tuple((d * (k - 1), 0) for d, k in zip(dilation, kernel, strict=True))
    elif padding == "same":
        if any(s != 1 for s in stride):
            raise _fail(
                node,
                f"{node.op}(padding=same) needs stride 1, as in torch; got stride "
                f"{_shown(attrs['stride'])}",
                "give the padding as a number, e.g. padding=1 for a 3-wide kernel",
            )
        totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    elif padding == "valid":
        pads = ((0, 0),) * n
    else:
        pads = tuple((p, p) for p in per_axis(node, "padding", n))
    return Window(kernel, stride, dilation, pads)


def spatial_rank(ctx: OpCtx, n: int) -> None:
    """Fail unless the input is [B, C] and n spatial axes."""
    if ctx.x.rank != n + 2:
        raise ctx.fail(
            f"{ctx.node.op} needs {LAYOUTS[n]} (batch, channels, {', '.join(AXES[n])}), "
            f"got {ctx.x}",
            f"a flat input needs a reshape to channels first, e.g. {FLAT_TO[n]}"
            if ctx.x.rank == 2
            else f"its input should look like {LAYOUTS[n]}",
        )


def channels(ctx: OpCtx) -> int:
    hint = "give the channel dim a number (or a param) so the weights have a shape"
    return known_channels(ctx, hint)


def _check_groups(ctx: OpCtx, c: int) -> None:
    g, filters = ctx["groups"], ctx["filters"]
    for what, count in (("input channels", c), ("filters", filters)):
        if count % g:
            raise ctx.fail(
                f"{ctx.node.op}(groups={g}) needs {what} divisible by {g}, got {count}",
                "groups must divide both the input's channels and the filters",
            )


def _slide(ctx: OpCtx, w: Window, i: int, size: Dim) -> Dim:
    """The output size of spatial axis i: (L + p_b + p_e - span) // s + 1."""
    padded = size + w.pads[i][0] + w.pads[i][1]
    if isinstance(padded, int) and padded < w.span(i):
        axis = AXES[len(w.kernel)][i]
        dilated = f" (dilated to {w.span(i)})" if w.span(i) != w.kernel[i] else ""
        raise ctx.fail(
            f"{ctx.node.op}'s kernel {w.kernel[i]}{dilated} is larger than the input's "
            f"padded {axis} {padded} ({ctx.x})",
            "use a smaller kernel or more padding, or downsample less before it",
        )
    return (padded - w.span(i)) // w.stride[i] + 1


def _ceil_slide(ctx: OpCtx, w: Window, i: int, size: Dim) -> Dim:
    """The output size of spatial axis i with ceil_mode: torch counts the windows up to
    the one that reaches past the end, A = (L + p_b + p_e - span + s - 1) // s + 1, then
    drops the last if it starts in the right padding, leaving B = (L + p_b + s - 1) // s
    (the windows starting before L + p_b). It drops at most one, so the size is min(A, B);
    their numerators differ by the constant s - span + p_b, so which is smaller does not
    depend on L, and a symbolic L stays a plain floor division."""
    _slide(ctx, w, i, size)  # the kernel must fit the padded input, as without ceil_mode
    s, before = w.stride[i], w.pads[i][0]
    if s - w.span(i) + before <= 0:
        return (size + before + w.pads[i][1] - w.span(i) + s - 1) // s + 1
    return (size + before + s - 1) // s


def _slid(ctx: OpCtx, w: Window, c: Dim, ceil: bool = False) -> TensorType:
    slide = _ceil_slide if ceil else _slide
    spatial = tuple(slide(ctx, w, i, d) for i, d in enumerate(ctx.x.shape[2:]))
    return TensorType((ctx.x.shape[0], c) + spatial, ctx.x.dtype)


# -- convolution -----------------------------------------------------------------------


def _conv_window(ctx: OpCtx, n: int) -> tuple[int, Window]:
    spatial_rank(ctx, n)
    c = channels(ctx)
    _check_groups(ctx, c)
    return c, window(ctx.node, n)


def _conv_params(ctx: OpCtx, weight_shape: tuple[int, ...]) -> tuple[ParamSpec, ...]:
    weight = ParamSpec("weight", weight_shape, ctx.init("init", GLOROT_UNIFORM))
    bias = (ParamSpec("bias", (ctx["filters"],), ctx["bias_init"] or ZEROS),) if ctx["bias"] else ()
    return weight_params(weight, ctx["weight_norm"]) + bias


def _conv(n: int) -> OpDef:
    def shape(ctx: OpCtx) -> TensorType:
        _, w = _conv_window(ctx, n)
        return _slid(ctx, w, ctx["filters"])

    def params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
        c, w = _conv_window(ctx, n)
        return _conv_params(ctx, (ctx["filters"], c // ctx["groups"]) + w.kernel)

    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        """(C/groups)·∏k multiply-adds (2 FLOPs each) per output element, plus the bias."""
        c, w = _conv_window(ctx, n)
        per_out = 2 * (c // ctx["groups"]) * math.prod(w.kernel) + (1 if ctx["bias"] else 0)
        return per_out * numel(out)

    module = f"torch.nn.Conv{n}d"
    padding = Arg(
        "padding",
        CONV1D_PADDING if n == 1 else _takes_causal(CONV_PADDING),
        "valid",
        f"valid, same (stride 1), {'causal ' if n == 1 else ''}or zeros per side",
    )
    return OpDef(
        f"conv{n}d",
        examples=EXAMPLES.get(f"conv{n}d", ()),
        errors=ERRORS.get(f"conv{n}d", ()),
        args=(
            FILTERS,
            Arg("kernel", SIZES, doc="kernel size: an int or one per spatial axis"),
            STRIDE,
            padding,
            DILATION,
            *CONV_TAIL,
        ),
        shape=shape,
        params=params,
        flops=flops,
        category="convolution",
        doc=f"{n}-D convolution over {LAYOUTS[n]} ({module}).",
    )


register(_conv(1))
register(_conv(2))


def _transpose_window(ctx: OpCtx) -> tuple[int, Window, tuple[int, ...]]:
    c, w = _conv_window(ctx, 2)
    extra = per_axis(ctx.node, "output_padding", 2)
    for i, p in enumerate(extra):
        if p >= max(w.stride[i], w.dilation[i]):
            raise ctx.fail(
                f"conv_transpose2d's output_padding {p} must be smaller than its stride "
                f"{w.stride[i]} or its dilation {w.dilation[i]}, as in torch",
                "output_padding only picks among the sizes a stride > 1 makes possible",
            )
    return c, w, extra


def _transpose_shape(ctx: OpCtx) -> TensorType:
    """Each axis: (L - 1)·s - p_b - p_e + d·(k - 1) + output_padding + 1."""
    _, w, extra = _transpose_window(ctx)
    spatial = []
    for i, size in enumerate(ctx.x.shape[2:]):
        out = (size - 1) * w.stride[i] - sum(w.pads[i]) + w.span(i) + extra[i]
        if isinstance(out, int) and out < 1:
            raise ctx.fail(
                f"conv_transpose2d's output {AXES[2][i]} would be {out} for {ctx.x}",
                "use less padding",
            )
        spatial.append(out)
    return TensorType((ctx.x.shape[0], ctx["filters"]) + tuple(spatial), ctx.x.dtype)


def _transpose_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    c, w, _ = _transpose_window(ctx)
    return _conv_params(ctx, (c, ctx["filters"] // ctx["groups"]) + w.kernel)


def _transpose_flops(ctx: OpCtx, out: TensorType) -> Dim:
    """Every input element scatters into (filters/groups)·∏k outputs: 2 FLOPs each."""
    _, w, _ = _transpose_window(ctx)
    scatter = 2 * (ctx["filters"] // ctx["groups"]) * math.prod(w.kernel) * numel(ctx.x)
    return scatter + (numel(out) if ctx["bias"] else 0)


register(
    OpDef(
        "conv_transpose2d",
        examples=EXAMPLES.get("conv_transpose2d", ()),
        errors=ERRORS.get("conv_transpose2d", ()),
        args=(
            FILTERS,
            Arg("kernel", SIZES, doc="kernel size: an int or [kh, kw]"),
            STRIDE,
            Arg("padding", _takes_causal(PADS), 0, "zeros cut from each side of the output"),
            Arg("output_padding", PADS, 0, "extra rows/columns after; < stride or dilation"),
            DILATION,
            *CONV_TAIL,
        ),
        shape=_transpose_shape,
        params=_transpose_params,
        flops=_transpose_flops,
        category="convolution",
        doc="Transposed 2-D convolution over [B, C, H, W] (torch.nn.ConvTranspose2d).",
    )
)


# -- pooling ---------------------------------------------------------------------------


def _pool_window(ctx: OpCtx, n: int) -> Window:
    spatial_rank(ctx, n)
    w = window(ctx.node, n)
    for (p, _), k in zip(w.pads, w.kernel, strict=True):
        if p > k // 2:
            raise ctx.fail(
                f"{ctx.node.op}'s padding {p} is more than half its kernel {k}",
                "torch allows padding up to kernel // 2",
            )
    return w


CEIL_MODE = Arg("ceil_mode", BOOL, False, "count a last, partial window (torch's ceil formula)")


def _pool(kind: str, n: int) -> OpDef:
    def shape(ctx: OpCtx) -> TensorType:
        return _slid(ctx, _pool_window(ctx, n), ctx.x.shape[1], ctx["ceil_mode"])

    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        """One comparison or addition per window element of every output."""
        return math.prod(_pool_window(ctx, n).kernel) * numel(out)

    extra: tuple[Arg, ...] = ()
    if kind == "max":
        what = "maximum"
    else:
        what = "mean (padding zeros counted unless count_include_pad=false, as torch)"
        extra = (Arg("count_include_pad", BOOL, True, "divide by the window with its padding"),)
    return OpDef(
        f"{kind}pool{n}d",
        examples=EXAMPLES.get(f"{kind}pool{n}d", ()),
        errors=ERRORS.get(f"{kind}pool{n}d", ()),
        args=(
            Arg("kernel", SIZES, doc="window size: an int or one per spatial axis"),
            Arg("stride", SIZES, None, "default: the kernel"),
            Arg("padding", PADS, 0, "at most kernel // 2 per side"),
            CEIL_MODE,
            *extra,
        ),
        shape=shape,
        flops=flops,
        category="pooling",
        doc=f"The {what} over windows of {LAYOUTS[n]} (torch.nn.{kind.capitalize()}Pool{n}d).",
    )


for _kind in ("max", "avg"):
    for _n in (1, 2):
        register(_pool(_kind, _n))


def adaptive_sizes(node: Node, n: int) -> tuple[int, ...]:
    """An adaptive pooling node's output size, one int per spatial axis."""
    return per_axis(node, "output_size", n)


def _adaptive(kind: str, n: int) -> OpDef:
    def shape(ctx: OpCtx) -> TensorType:
        spatial_rank(ctx, n)
        return TensorType(ctx.x.shape[:2] + adaptive_sizes(ctx.node, n), ctx.x.dtype)

    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        """One comparison or addition per input element (windows that overlap, where the
        size does not divide, read their shared elements once more; not counted)."""
        return numel(ctx.x)

    what = "maximum" if kind == "max" else "mean"
    module = f"torch.nn.Adaptive{kind.capitalize()}Pool{n}d"
    sizes = "an int" if n == 1 else "an int or [oh, ow]"
    return OpDef(
        f"adaptive_{kind}pool{n}d",
        examples=EXAMPLES.get(f"adaptive_{kind}pool{n}d", ()),
        errors=ERRORS.get(f"adaptive_{kind}pool{n}d", ()),
        args=(Arg("output_size", SIZES, doc=f"the output's spatial size: {sizes}"),),
        shape=shape,
        flops=flops,
        category="pooling",
        doc=f"The {what} over the windows that divide {LAYOUTS[n]} into the output size, "
        f"whatever the input size: window i of L spans [⌊i·L/o⌋, ⌈(i + 1)·L/o⌉) ({module}).",
    )


for _kind, _n in (("avg", 1), ("avg", 2), ("max", 2)):
    register(_adaptive(_kind, _n))


def _global_shape(ctx: OpCtx) -> TensorType:
    if ctx.x.rank < 3:
        raise ctx.fail(
            f"{ctx.node.op} needs [B, C, ...] with at least one spatial axis, got {ctx.x}",
            "it pools every axis after the channels; on a flat [B, F] there is nothing left",
        )
    return TensorType(ctx.x.shape[:2], ctx.x.dtype)


for _kind, _what in (("avg", "mean"), ("max", "maximum")):
    register(
        OpDef(
            f"global_{_kind}pool",
            examples=EXAMPLES.get(f"global_{_kind}pool", ()),
            shape=_global_shape,
            flops=lambda ctx, out: numel(ctx.x),
            category="pooling",
            doc=f"The {_what} over all spatial axes: [B, C, ...] -> [B, C].",
        )
    )


# -- upsampling ------------------------------------------------------------------------


def upsample_scales(node: Node, rank: int) -> tuple[int, ...]:
    return per_axis(node, "scale", rank - 2)


def _upsample_shape(ctx: OpCtx) -> TensorType:
    """Each spatial size L becomes L·scale."""
    bilinear = ctx["mode"] == "bilinear"
    if (bilinear and ctx.x.rank != 4) or not 3 <= ctx.x.rank <= 5:
        raise ctx.fail(
            f"upsample(mode={ctx['mode']}) needs "
            f"{'[B, C, H, W]' if bilinear else '[B, C, L], [B, C, H, W] or [B, C, D, H, W]'}, "
            f"got {ctx.x}",
            "bilinear interpolates images; use mode=nearest for other ranks"
            if bilinear
            else "it scales the axes after the batch and channels",
        )
    scales = upsample_scales(ctx.node, ctx.x.rank)
    spatial = tuple(d * s for d, s in zip(ctx.x.shape[2:], scales, strict=True))
    return TensorType(ctx.x.shape[:2] + spatial, ctx.x.dtype)


register(
    OpDef(
        "upsample",
        examples=EXAMPLES.get("upsample", ()),
        args=(
            Arg("scale", SIZES, doc="integer factor: one for all spatial axes or one each"),
            Arg("mode", choice("nearest", "bilinear"), "nearest"),
        ),
        shape=_upsample_shape,
        flops=lambda ctx, out: (7 if ctx["mode"] == "bilinear" else 0) * numel(out),
        category="pooling",
        doc="Upsampling by integer factors (torch F.interpolate, align_corners=False).",
    )
)
