"""Normalization and regularization: dropout, drop_path, batchnorm, layernorm, rmsnorm,
groupnorm.

batchnorm normalizes per channel (axis 1) over the batch, like torch.nn.BatchNorm1d/2d/3d,
and keeps running statistics as buffers (used at inference). layernorm normalizes each
sample over its last axis (torch.nn.LayerNorm(F)); rmsnorm divides it by its root mean
square there, without centering (torch.nn.RMSNorm(F), LLaMA's). groupnorm normalizes each
sample over groups of channels (torch.nn.GroupNorm(groups, C)). dropout is inverted
dropout: scaled by 1/(1-p) in training, the identity at inference. drop_path is what
`stochastic_depth` (ops/combinators) becomes: it drops a residual branch per sample.
"""

from __future__ import annotations

from ...ir import InitSpec, ParamSpec, TensorType
from ..common import ONES, ZEROS, known_channels, numel, per_element, same_shape
from ..linear import features
from ..registry import (
    BOOL,
    NONE,
    POS_INT,
    POS_NUMBER,
    PROB,
    Arg,
    OpCtx,
    OpDef,
    choice,
    one_of,
    register,
)
from .examples import ERRORS, EXAMPLES

# drop_path's arguments, which stochastic_depth (combinators) takes and passes on.
DROP_PATH_ARGS = (
    Arg("p", PROB, doc="probability of dropping the residual branch"),
    Arg("mode", choice("row", "batch"), "row", "drop per sample (row) or per batch"),
)

register(
    OpDef(
        "dropout",
        examples=EXAMPLES.get("dropout", ()),
        errors=ERRORS.get("dropout", ()),
        args=(Arg("p", PROB, 0.5, "probability of dropping a unit"),),
        shape=same_shape,
        flops=per_element(1),
        category="regularization",
        inference_identity=True,
        doc="Inverted dropout: mask ⊙ x / (1 - p) in training, x at inference.",
    )
)


register(
    OpDef(
        "drop_path",
        examples=EXAMPLES.get("drop_path", ()),
        errors=ERRORS.get("drop_path", ()),
        args=DROP_PATH_ARGS,
        shape=same_shape,
        flops=per_element(1),
        category="regularization",
        internal=True,
        doc="stochastic_depth's branch drop: x ⊙ m / (1 - p), m ~ Bernoulli(1 - p) per "
        "sample (mode=row) or per batch, in training; x at inference.",
    )
)


_BN_SHAPES = "[B, C], [B, C, L], [B, C, H, W] or [B, C, D, H, W]"


def _channels(ctx: OpCtx, max_rank: int | None = 5) -> int:
    """The channel count (axis 1) of [B, C, ...], at most `max_rank` axes."""
    op = ctx.node.op
    if ctx.x.rank < 2 or (max_rank is not None and ctx.x.rank > max_rank):
        shapes = "[B, C, ...]" if max_rank is None else _BN_SHAPES
        raise ctx.fail(
            f"{op} needs {shapes}, got {ctx.x}",
            "the channels are axis 1 (batch first, channels first)",
        )
    return known_channels(ctx)


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
        examples=EXAMPLES.get("batchnorm", ()),
        positive_params=("running_var",),
        errors=ERRORS.get("batchnorm", ()),
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
        examples=EXAMPLES.get("layernorm", ()),
        errors=ERRORS.get("layernorm", ()),
        args=(Arg("eps", POS_NUMBER, 1e-5), Arg("affine", BOOL, True, "learn γ and β")),
        shape=_ln_shape,
        params=_ln_params,
        flops=lambda ctx, out: 8 * numel(out),
        category="normalization",
        doc="Layer normalization of each sample over its last axis (torch.nn.LayerNorm).",
    )
)


def _rms_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return (ParamSpec("weight", (features(ctx),), ONES),) if ctx["affine"] else ()


register(
    OpDef(
        "rmsnorm",
        examples=EXAMPLES.get("rmsnorm", ()),
        errors=ERRORS.get("rmsnorm", ()),
        args=(
            # none is torch's default, the machine epsilon of the input's dtype
            Arg(
                "eps",
                one_of(POS_NUMBER, NONE),
                None,
                "added to the mean square; none: finfo(dtype).eps",
            ),
            Arg("affine", BOOL, True, "learn a scale γ (`weight`)"),
        ),
        shape=_ln_shape,
        params=_rms_params,
        # x², its mean (a sum and a share of a divide), the divide by the rms, the scale
        flops=lambda ctx, out: 4 * numel(out),
        category="normalization",
        doc="RMS normalization of each sample over its last axis: γ · x / √(mean(x²) + eps), "
        "no centering and no shift (torch.nn.RMSNorm).",
    )
)


def _group_channels(ctx: OpCtx) -> int:
    """The channel count, which the groups must divide."""
    c, groups = _channels(ctx, max_rank=None), ctx["groups"]
    if c % groups:
        divisors = [d for d in range(1, c + 1) if c % d == 0]
        raise ctx.fail(
            f"groupnorm({groups}) splits the channels into {groups} equal groups, but "
            f"{ctx.x} has {c} channels",
            f"use a number of groups that divides {c}: {', '.join(map(str, divisors))}",
        )
    return c


def _gn_shape(ctx: OpCtx) -> TensorType:
    _group_channels(ctx)
    return ctx.x


def _gn_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return _affine(_group_channels(ctx), ctx["affine"])


register(
    OpDef(
        "groupnorm",
        examples=EXAMPLES.get("groupnorm", ()),
        errors=ERRORS.get("groupnorm", ()),
        args=(
            Arg("groups", POS_INT, doc="number of channel groups; it divides the channels"),
            Arg("eps", POS_NUMBER, 1e-5),
            Arg("affine", BOOL, True, "learn γ and β per channel"),
        ),
        shape=_gn_shape,
        params=_gn_params,
        flops=lambda ctx, out: 8 * numel(out),
        category="normalization",
        doc="Group normalization of [B, C, ...]: each sample's channels in `groups` groups, "
        "each group normalized over its channels and positions, then γ·x̂ + β per channel "
        "(torch.nn.GroupNorm(groups, C)).",
    )
)
