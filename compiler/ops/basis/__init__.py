"""Basis-function layers: rbf (learned centres and widths), polynomial, fourier.

rbf unit k computes φ_k(x) = exp(-‖x - μ_k‖² / (2σ_k²)) over the last axis, with
learnable centres μ (init uniform(-1, 1)) and widths σ (init `sigma`, learned unless
`learn_sigma=false`); the course's output y = wᵀφ(x) + b is a `dense` after it.
"""

from __future__ import annotations

from ...dims import Dim
from ...ir import InitSpec, ParamSpec, TensorType
from ..common import numel
from ..linear import features
from ..registry import BOOL, INIT, POS_INT, POS_NUMBER, Arg, OpCtx, OpDef, register
from .examples import EXAMPLES

CENTRES_INIT = InitSpec("uniform", (("a", -1.0), ("b", 1.0)))


def _rbf_shape(ctx: OpCtx) -> TensorType:
    features(ctx)
    return TensorType(ctx.x.shape[:-1] + (ctx["units"],), ctx.x.dtype)


def _rbf_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    units = ctx["units"]
    centres = ParamSpec("centers", (units, features(ctx)), ctx.init("init", CENTRES_INIT))
    sigma_init = InitSpec("constant", (("value", ctx["sigma"]),))
    return (centres, ParamSpec("sigma", (units,), sigma_init, trainable=ctx["learn_sigma"]))


def _rbf_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return (3 * features(ctx) + 4) * numel(out)


register(
    OpDef(
        "rbf",
        examples=EXAMPLES.get("rbf", ()),
        positive_params=("sigma",),
        args=(
            Arg("units", POS_INT, doc="number of basis functions"),
            Arg("sigma", POS_NUMBER, 1.0, "initial width"),
            Arg("learn_sigma", BOOL, True),
            Arg("init", INIT, None, "centre init (default uniform(-1, 1))"),
        ),
        shape=_rbf_shape,
        params=_rbf_params,
        flops=_rbf_flops,
        category="basis",
        doc="Gaussian radial basis functions on the last axis: [.., F] -> [.., units].",
    )
)


def _widen(factor_arg: str, per_feature: int) -> tuple:
    def shape(ctx: OpCtx) -> TensorType:
        if ctx.x.rank < 1:
            raise ctx.fail(f"{ctx.node.op} needs a features axis, got {ctx.x}")
        width = per_feature * ctx[factor_arg] * ctx.x.shape[-1]
        return TensorType(ctx.x.shape[:-1] + (width,), ctx.x.dtype)

    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        return 2 * numel(out)

    return shape, flops


_poly_shape, _poly_flops = _widen("degree", 1)
_fourier_shape, _fourier_flops = _widen("n", 2)

register(
    OpDef(
        "polynomial",
        examples=EXAMPLES.get("polynomial", ()),
        args=(Arg("degree", POS_INT),),
        shape=_poly_shape,
        flops=_poly_flops,
        category="basis",
        doc="x, x², …, x^degree of each feature: [.., F] -> [.., F·degree].",
    )
)
register(
    OpDef(
        "fourier",
        examples=EXAMPLES.get("fourier", ()),
        args=(Arg("n", POS_INT),),
        shape=_fourier_shape,
        flops=_fourier_flops,
        category="basis",
        doc="sin(kx), cos(kx) for k = 1…n of each feature: [.., F] -> [.., 2nF].",
    )
)
