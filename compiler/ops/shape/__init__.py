"""Shape ops: flatten, reshape, permute, slice and pad. They move or select data, or add
constant elements; none computes (no FLOPs).

reshape and permute take full shapes and axis lists, batch included, as torch.reshape
and torch.permute do; -1 in a reshape is inferred, exactly, also for symbolic dims.
slice takes Python's (and torch's) slicing on one axis: negative indices count from the
end, a stop past the end is clipped. On a symbolic dim the slice is taken to lie inside
it (nothing clipped): slice(1, none, axis=1) on [B, T, D] is [B, T - 1, D]. pad takes
torch F.pad's order, the last axis first: pad([1, 2]) on [B, T] is [B, T + 3].
"""

from __future__ import annotations

from ...dims import Dim, dims_equal, exact_div, format_dim, format_shape, product
from ...ir import TensorType, format_value
from ..common import norm_axis
from ..registry import (
    DIMS,
    INT,
    INTS,
    NONNEG_INT,
    NUMBER,
    OPTIONAL_INT,
    POS_INT,
    Arg,
    OpCtx,
    OpDef,
    list_of,
    register,
)
from .examples import ERRORS, EXAMPLES


def _flatten_shape(ctx: OpCtx) -> TensorType:
    rank = ctx.x.rank
    if rank == 0:
        raise ctx.fail("flatten needs a tensor of rank >= 1, got a scalar")
    start = norm_axis(ctx, ctx["start"], rank)
    end = norm_axis(ctx, ctx["end"], rank)
    if start > end:
        raise ctx.fail(f"flatten(start={ctx['start']}, end={ctx['end']}) is empty on {ctx.x}")
    merged = product(ctx.x.shape[start : end + 1])
    return TensorType(ctx.x.shape[:start] + (merged,) + ctx.x.shape[end + 1 :], ctx.x.dtype)


register(
    OpDef(
        "flatten",
        examples=EXAMPLES.get("flatten", ()),
        args=(Arg("start", INT, 1), Arg("end", INT, -1)),
        shape=_flatten_shape,
        category="shape",
        int_inputs=True,
        doc="Merge axes start..end into one (torch.flatten): [B, C, H, W] -> [B, C·H·W].",
    )
)


def _reshape_shape(ctx: OpCtx) -> TensorType:
    target: tuple[Dim, ...] = ctx["shape"]
    total = product(ctx.x.shape)
    holes = [i for i, d in enumerate(target) if d == -1]
    if len(holes) > 1:
        raise ctx.fail(f"reshape({format_shape(target)}) has more than one -1")
    if any(isinstance(d, int) and d < -1 or d == 0 for d in target):
        raise ctx.fail(f"reshape({format_shape(target)}) has a dim < 1 other than -1")
    known = product(d for d in target if d != -1)
    if holes:
        fill = exact_div(total, known)
        if fill is None:
            raise ctx.fail(
                f"reshape({format_shape(target)}) cannot fill -1: {ctx.x} has "
                f"{format_dim(total)} elements, not a multiple of {format_dim(known)}",
                "check the target shape's product",
            )
        target = target[: holes[0]] + (fill,) + target[holes[0] + 1 :]
    elif not dims_equal(known, total):
        raise ctx.fail(
            f"reshape({format_shape(target)}) needs {format_dim(known)} elements, "
            f"but {ctx.x} has {format_dim(total)}",
            "the shapes must have the same number of elements (batch included)",
        )
    return TensorType(tuple(target), ctx.x.dtype)


register(
    OpDef(
        "reshape",
        examples=EXAMPLES.get("reshape", ()),
        args=(Arg("shape", DIMS, doc="the full new shape, batch included; one -1 is inferred"),),
        shape=_reshape_shape,
        category="shape",
        int_inputs=True,
        doc="A new shape with the same elements (torch.reshape); e.g. reshape([B, 1, 28, 28]).",
    )
)


def _permute_shape(ctx: OpCtx) -> TensorType:
    dims = ctx["dims"]
    rank = ctx.x.rank
    if len(dims) != rank:
        raise ctx.fail(
            f"permute({list(dims)}) lists {len(dims)} axes, but {ctx.x} has {rank}",
            "name every axis once, batch included: permute([0, 2, 1])",
        )
    axes = [norm_axis(ctx, d, rank) for d in dims]
    if sorted(axes) != list(range(rank)):
        raise ctx.fail(f"permute({list(dims)}) must name each axis of {ctx.x} exactly once")
    return TensorType(tuple(ctx.x.shape[a] for a in axes), ctx.x.dtype)


register(
    OpDef(
        "permute",
        examples=EXAMPLES.get("permute", ()),
        args=(Arg("dims", INTS, doc="the new order of all axes"),),
        shape=_permute_shape,
        category="shape",
        int_inputs=True,
        doc="Reorder axes (torch.permute): permute([0, 2, 1]) swaps the last two.",
    )
)


def _slice_shape(ctx: OpCtx) -> TensorType:
    if ctx.x.rank == 0:
        raise ctx.fail("slice needs a tensor of rank >= 1, got a scalar")
    axis = norm_axis(ctx, ctx["axis"], ctx.x.rank)
    start, stop, step = ctx["start"], ctx["stop"], ctx["step"]
    size = ctx.x.shape[axis]
    shown = f"slice({start}, {format_value(stop)}, axis={ctx['axis']}, step={step})"
    length: Dim
    if isinstance(size, int):
        if not -size <= start < size:
            raise ctx.fail(
                f"{shown} starts beyond axis {axis} of {ctx.x}, which has {size} elements",
                f"start at an index in {-size}..{size - 1}",
            )
        length = len(range(*slice(start, stop, step).indices(size)))
    else:
        # Positions from the end are size - n; the slice is taken to lie inside the dim.
        begin = start if start >= 0 else size + start
        end = size if stop is None else stop if stop >= 0 else size + stop
        span = end - begin
        length = span if step == 1 else (span + step - 1) // step
    if isinstance(length, int) and length <= 0:
        raise ctx.fail(
            f"{shown} is empty on {ctx.x}",
            "stop must come after start (Python's slicing: negative indices count from the end)",
        )
    shape = ctx.x.shape[:axis] + (length,) + ctx.x.shape[axis + 1 :]
    return TensorType(shape, ctx.x.dtype)


register(
    OpDef(
        "slice",
        examples=EXAMPLES.get("slice", ()),
        errors=ERRORS.get("slice", ()),
        args=(
            Arg("start", INT, doc="the first index; negative counts from the end"),
            Arg("stop", OPTIONAL_INT, doc="the index after the last (clipped); none: the end"),
            Arg("axis", INT, -1),
            Arg("step", POS_INT, 1),
        ),
        shape=_slice_shape,
        category="shape",
        int_inputs=True,
        doc="Elements start..stop (exclusive) by step along one axis, as x[..., start:stop:step] "
        "in torch: slice(1, none, axis=1) on [B, T, D] is [B, T - 1, D].",
    )
)


def _pad_shape(ctx: OpCtx) -> TensorType:
    pads, rank = ctx["pads"], ctx.x.rank
    if len(pads) % 2:
        raise ctx.fail(
            f"pad({format_value(pads)}) has {len(pads)} entries, not a (before, after) pair "
            "per axis",
            "give two per axis, the last axis first: [left, right, top, bottom, ...]",
        )
    if len(pads) > 2 * rank:
        raise ctx.fail(
            f"pad({format_value(pads)}) pads {len(pads) // 2} axes, but {ctx.x} has {rank}",
            "give two entries per axis, the last axis first, for at most every axis",
        )
    shape = list(ctx.x.shape)
    for i in range(len(pads) // 2):
        shape[rank - 1 - i] = shape[rank - 1 - i] + pads[2 * i] + pads[2 * i + 1]
    return TensorType(tuple(shape), ctx.x.dtype)


register(
    OpDef(
        "pad",
        examples=EXAMPLES.get("pad", ()),
        errors=ERRORS.get("pad", ()),
        args=(
            Arg(
                "pads",
                list_of(NONNEG_INT, "a list of integers >= 0"),
                doc="(before, after) per axis, the last axis first: [left, right, top, bottom]",
            ),
            Arg("value", NUMBER, 0, "the constant the new elements hold"),
        ),
        shape=_pad_shape,
        category="shape",
        int_inputs=True,
        doc="Constant padding in torch F.pad's order: pad([1, 2]) on [B, T] is [B, T + 3].",
    )
)
