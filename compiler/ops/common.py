"""Rules shared by many ops: elementwise shapes, FLOP counts, the standard inits.

FLOPs count a multiply-add as 2 and an elementwise function as a small constant per
element; they are estimates of a forward pass, reported per example by `dlc summary`.
"""

from __future__ import annotations

from functools import lru_cache

from ..dims import Dim, dims_equal, product
from ..ir import InitSpec, TensorType
from .registry import FlopRule, OpCtx

ZEROS = InitSpec("zeros")
ONES = InitSpec("ones")
GLOROT_UNIFORM = InitSpec("glorot_uniform")


def known_channels(ctx: OpCtx, hint: str = "give the channel dim a number") -> int:
    """The channel count on axis 1 of [B, C, ...] as a concrete int (weights, statistics
    and groups need it)."""
    c = ctx.x.shape[1]
    if not isinstance(c, int):
        raise ctx.fail(f"{ctx.node.op} needs a known channel count on axis 1, got {ctx.x}", hint)
    return c


def same_shape(ctx: OpCtx) -> TensorType:
    return ctx.x


def shapes_equal(a: TensorType, b: TensorType, skip_axis: int | None = None) -> bool:
    """Equal ranks and dims (as polynomials), ignoring `skip_axis` if given."""
    if a.rank != b.rank:
        return False
    pairs = enumerate(zip(a.shape, b.shape, strict=True))
    return all(i == skip_axis or dims_equal(x, y) for i, (x, y) in pairs)


def numel(t: TensorType) -> Dim:
    return _product(t.shape)


@lru_cache(maxsize=4096)
def _product(shape: tuple[Dim, ...]) -> Dim:
    """Shapes repeat through a network, and symbolic products are not free."""
    return product(shape)


def per_element(cost: int) -> FlopRule:
    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        return cost * numel(out)

    return flops


def need_rank(ctx: OpCtx, lo: int, what: str, example: str) -> None:
    if ctx.x.rank < lo:
        raise ctx.fail(
            f"{ctx.node.op} needs {what}, got {ctx.x}",
            f"its input should look like {example}",
        )


def norm_axis(ctx: OpCtx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.fail(
            f"axis {axis} is out of range for {ctx.x} (rank {rank})",
            f"use an axis in {-rank}..{rank - 1}",
        )
    return axis % rank
