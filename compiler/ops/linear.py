"""dense (alias linear): y = x Wᵀ + b on the last axis, like `torch.nn.Linear`."""

from __future__ import annotations

from ..dims import Dim
from ..ir import ParamSpec, TensorType
from .common import GLOROT_UNIFORM, ZEROS, numel
from .registry import BOOL, INIT, POS_INT, Arg, OpCtx, OpDef, register


def features(ctx: OpCtx, what: str = "features") -> int:
    """The last axis of the input as a concrete int (weights need it)."""
    if ctx.x.rank == 0:
        raise ctx.fail(f"{ctx.node.op} needs a tensor with a {what} axis, got a scalar")
    f = ctx.x.shape[-1]
    if not isinstance(f, int):
        raise ctx.fail(
            f"{ctx.node.op} needs a known number of {what} on the last axis, "
            f"but {ctx.x} ends in a symbolic dim",
            "give that input dim a number (or a param) so the weights have a shape",
        )
    return f


def _shape(ctx: OpCtx) -> TensorType:
    features(ctx)
    if ctx.x.rank == 4:
        ctx.warn(
            f"dense acts on the last axis of the feature map {ctx.x}",
            "this is almost always a forgotten flatten: write flatten -> dense(...)",
        )
    return TensorType(ctx.x.shape[:-1] + (ctx["units"],), ctx.x.dtype)


def _params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    units, f = ctx["units"], features(ctx)
    weight = ParamSpec("weight", (units, f), ctx.init("init", GLOROT_UNIFORM))
    if not ctx["bias"]:
        return (weight,)
    return (weight, ParamSpec("bias", (units,), ctx["bias_init"] or ZEROS))


def _flops(ctx: OpCtx, out: TensorType) -> Dim:
    per_out = 2 * features(ctx) + (1 if ctx["bias"] else 0)
    return per_out * numel(out)


DENSE = register(
    OpDef(
        "dense",
        args=(
            Arg("units", POS_INT, doc="output features"),
            Arg("bias", BOOL, True),
            Arg("init", INIT, None, "weight init (default: training.init, else glorot_uniform)"),
            Arg("bias_init", INIT, None, "bias init (default zeros)"),
        ),
        shape=_shape,
        params=_params,
        flops=_flops,
        aliases=("linear",),
        category="linear",
        doc="Fully connected layer on the last axis of [B, ..., F] (torch.nn.Linear).",
    )
)
