"""The shape and dtype rules of elementwise arithmetic, shared by the ops of two tensors
(add, sub, mul, div) and those of a tensor and a constant (scalar.py)."""

from __future__ import annotations

from ...dims import Dim, dims_equal, format_shape
from ...dtypes import INT_DTYPES
from ...ir import TensorType
from ..registry import OpCtx

SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}  # the operator a spec writes


def broadcast(ctx: OpCtx) -> TensorType:
    """numpy broadcasting over all inputs, exact on symbolic dims; one dtype for all."""
    no_bool(ctx, SYMBOLS.get(ctx.node.op, ctx.node.op))
    same_dtype(ctx)
    rank = max(t.rank for t in ctx.inputs)
    out: list[Dim] = []
    for axis in range(-rank, 0):
        dim: Dim = 1
        for t in ctx.inputs:
            d = t.shape[axis] if -axis <= t.rank else 1
            if d == 1:
                continue
            if dim != 1 and not dims_equal(dim, d):
                shapes = " and ".join(str(t) for t in ctx.inputs)
                raise ctx.fail(
                    f"{ctx.node.op} cannot broadcast {shapes}: axis {axis} is {dim} and {d}",
                    _broadcast_hint(ctx.inputs),
                )
            dim = d
        out.append(dim)
    return TensorType(tuple(out), ctx.x.dtype)


def _broadcast_hint(inputs: tuple[TensorType, ...]) -> str:
    """numpy aligns shapes on the right; a [B, C] gate for a [B, C, H, W] map is aligned
    on the left, which a reshape to [B, C, 1, 1] fixes (squeeze-and-excitation)."""
    short, long = sorted(inputs[:2], key=lambda t: t.rank)
    k = short.rank
    if 1 < k < long.rank and all(
        dims_equal(a, b) for a, b in zip(short.shape, long.shape, strict=False)
    ):
        ones = (1,) * (long.rank - k)
        return (
            f"shapes align from the last axis: give the {format_shape(short.shape)} operand "
            f"trailing 1s with reshape({format_shape(short.shape + ones)}) first"
        )
    return "shapes align from the last axis, and each axis must match or be 1"


def same_dtype(ctx: OpCtx) -> None:
    if len({t.dtype for t in ctx.inputs}) > 1:
        shapes = " and ".join(str(t) for t in ctx.inputs)
        raise ctx.fail(
            f"{ctx.node.op} of tensors of different dtypes: {shapes}",
            "dlc converts no dtypes: integer tensors are ids, embed them first",
        )


def no_bool(ctx: OpCtx, symbol: str) -> None:
    """ONNX's Add, Sub, Mul, Div and Neg take no bool tensors (torch's `-` neither)."""
    for t, name in zip(ctx.inputs, ctx.node.inputs, strict=True):
        if t.dtype == "bool":
            raise ctx.fail(
                f"'{symbol}' of the bool tensor '{name}': arithmetic takes tensors of numbers",
                "ONNX's Add, Sub, Mul and Div take no bool tensors",
            )


def no_int_division(ctx: OpCtx) -> None:
    """`/` is true division: torch makes floats of integers, ONNX's Div truncates them."""
    for t, name in zip(ctx.inputs, ctx.node.inputs, strict=True):
        if t.dtype in INT_DTYPES:
            raise ctx.fail(
                f"'/' of the {t.dtype} tensor '{name}': true division makes floats of "
                "integers in torch, and truncates them in ONNX",
                "integer tensors are token ids: divide floats, after embedding(vocab, dim)",
            )
