"""Generative pieces: gaussian_sample, the reparameterization of a VAE.

`z: gaussian_sample(mu, logvar)` takes two tensors of one shape, the mean μ and the log
variance log σ² of a diagonal Gaussian, and draws z = μ + exp(½·logvar)·ε, ε ~ N(0, I),
in training (gradients reach μ and logvar through the draw). At inference it is μ, the
mean, unless `sample=true`: then the torch module and the ONNX graph (RandomNormalLike)
draw a fresh z on every call, as a VAE's generator does.
"""

from __future__ import annotations

from ...dims import Dim
from ...dtypes import FLOAT_DTYPES
from ...ir import TensorType
from ..common import numel, shapes_equal
from ..registry import BOOL, TENSOR, Arg, OpCtx, OpDef, register
from .examples import EXAMPLES


def _shape(ctx: OpCtx) -> TensorType:
    mu, logvar = ctx.inputs
    if not shapes_equal(mu, logvar) or mu.dtype != logvar.dtype:
        raise ctx.fail(
            f"gaussian_sample needs mu and logvar of one shape, got {mu} and {logvar}",
            "compute both from the same features with layers of the same width: "
            "mu: h -> dense(8), logvar: h -> dense(8)",
        )
    if mu.dtype not in FLOAT_DTYPES:
        raise ctx.fail(f"gaussian_sample needs floating-point mu and logvar, got {mu}")
    return mu


def _flops(ctx: OpCtx, out: TensorType) -> Dim:
    return 4 * numel(out)  # ½·logvar, exp, ·ε, + μ


register(
    OpDef(
        "gaussian_sample",
        examples=EXAMPLES.get("gaussian_sample", ()),
        args=(Arg("sample", BOOL, False, "draw z at inference too (else z = mu there)"),),
        varargs=Arg("inputs", TENSOR),
        arity=2,
        shape=_shape,
        flops=_flops,
        category="generative",
        doc="z = mu + exp(logvar / 2) ⊙ ε, ε ~ N(0, I) in training (the VAE's "
        "reparameterization); mu at inference unless sample=true.",
    )
)
