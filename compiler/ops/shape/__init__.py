"""Shape ops: flatten, reshape, permute. Data is not touched, only its layout.

reshape and permute take full shapes and axis lists, batch included, as torch.reshape
and torch.permute do; -1 in a reshape is inferred, exactly, also for symbolic dims.
"""

from __future__ import annotations

from ...dims import Dim, dims_equal, exact_div, format_dim, format_shape, product
from ...ir import TensorType
from ..common import norm_axis
from ..registry import DIMS, INT, INTS, Arg, OpCtx, OpDef, register
from .examples import EXAMPLES


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
