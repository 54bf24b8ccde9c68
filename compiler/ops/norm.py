"""Normalization and regularization: dropout, batchnorm, layernorm.

batchnorm normalizes per channel (axis 1) over the batch, like torch.nn.BatchNorm1d/2d/3d,
and keeps running statistics as buffers (used at inference). layernorm normalizes each
sample over its last axis (torch.nn.LayerNorm(F)). dropout is inverted dropout: scaled
by 1/(1-p) in training, the identity at inference.
"""

from __future__ import annotations

from ..ir import InitSpec, ParamSpec, TensorType
from .common import ONES, ZEROS, numel, per_element, same_shape
from .linear import features
from .registry import BOOL, POS_NUMBER, PROB, Arg, OpCtx, OpDef, register

register(
    OpDef(
        "dropout",
        args=(Arg("p", PROB, 0.5, "probability of dropping a unit"),),
        shape=same_shape,
        flops=per_element(1),
        category="regularization",
        doc="Inverted dropout: mask ⊙ x / (1 - p) in training, x at inference.",
    )
)


def _channels(ctx: OpCtx) -> int:
    if not 2 <= ctx.x.rank <= 5:
        raise ctx.fail(
            f"batchnorm needs [B, C], [B, C, L], [B, C, H, W] or [B, C, D, H, W], got {ctx.x}"
        )
    c = ctx.x.shape[1]
    if not isinstance(c, int):
        raise ctx.fail(
            f"batchnorm needs a known channel count on axis 1, got {ctx.x}",
            "give the channel dim a number",
        )
    return c


def _bn_shape(ctx: OpCtx) -> TensorType:
    _channels(ctx)
    return ctx.x


def _affine(n: int, affine: bool) -> tuple[ParamSpec, ...]:
    if not affine:
        return ()
    return (ParamSpec("weight", (n,), ONES), ParamSpec("bias", (n,), ZEROS))


def _bn_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    c = _channels(ctx)
    buffers = (
        ParamSpec("running_mean", (c,), ZEROS, trainable=False),
        ParamSpec("running_var", (c,), ONES, trainable=False),
        ParamSpec("num_batches_tracked", (), InitSpec("zeros"), trainable=False),
    )
    return _affine(c, ctx["affine"]) + buffers


register(
    OpDef(
        "batchnorm",
        args=(
            Arg("momentum", PROB, 0.1, "weight of the newest batch in the running averages"),
            Arg("eps", POS_NUMBER, 1e-5),
            Arg("affine", BOOL, True, "learn γ and β"),
        ),
        shape=_bn_shape,
        params=_bn_params,
        flops=per_element(4),
        category="normalization",
        doc="Batch normalization per channel (axis 1) with running statistics.",
    )
)


def _ln_shape(ctx: OpCtx) -> TensorType:
    features(ctx)
    return ctx.x


def _ln_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return _affine(features(ctx), ctx["affine"])


register(
    OpDef(
        "layernorm",
        args=(Arg("eps", POS_NUMBER, 1e-5), Arg("affine", BOOL, True, "learn γ and β")),
        shape=_ln_shape,
        params=_ln_params,
        flops=lambda ctx, out: 8 * numel(out),
        category="normalization",
        doc="Layer normalization of each sample over its last axis (torch.nn.LayerNorm).",
    )
)
