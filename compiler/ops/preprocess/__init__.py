"""standardize: input preprocessing baked into the graph.

Its statistics are buffers fitted on the training data by `dlc train` and exported as
constants, so a served model takes raw inputs (a feature constant in the training data
keeps scale 1, as in scikit-learn). zscore: (x - μ)/(σ + ε); minmax:
(x - min)/(max - min); zca: W(x - μ) with the ZCA whitening matrix W. All act on the
last axis.
"""

from __future__ import annotations

from ...dims import Dim
from ...ir import ParamSpec, TensorType
from ..common import ONES, ZEROS, numel
from ..linear import features
from ..registry import POS_NUMBER, Arg, OpCtx, OpDef, choice, register
from .examples import EXAMPLES


def _shape(ctx: OpCtx) -> TensorType:
    features(ctx)
    return ctx.x


def _params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    f = features(ctx)
    if ctx["method"] == "zca":
        return (
            ParamSpec("shift", (f,), ZEROS, trainable=False),
            ParamSpec("whiten", (f, f), ZEROS, trainable=False),
        )
    return (
        ParamSpec("shift", (f,), ZEROS, trainable=False),
        ParamSpec("scale", (f,), ONES, trainable=False),
    )


def _flops(ctx: OpCtx, out: TensorType) -> Dim:
    per = 2 * features(ctx) if ctx["method"] == "zca" else 2
    return per * numel(out)


register(
    OpDef(
        "standardize",
        examples=EXAMPLES.get("standardize", ()),
        positive_params=("scale",),
        args=(
            Arg("method", choice("zscore", "minmax", "zca"), "zscore"),
            Arg("eps", POS_NUMBER, 1e-8),
        ),
        shape=_shape,
        params=_params,
        flops=_flops,
        category="preprocessing",
        doc="Standardize features with statistics fitted on the training data.",
    )
)
