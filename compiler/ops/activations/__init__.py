"""Activation functions, as the course defines them (the formulas are in each OpDef's doc).

Most are elementwise and parameter-free, so they are registered from one table; hardtanh
and clamp (bounds to check), prelu (a learned slope), softmax/log_softmax (an axis) and
maxout (changes the width) have their own rules.
"""

from __future__ import annotations

from ...dims import Dim, exact_div, format_dim
from ...ir import InitSpec, ParamSpec, TensorType
from ..common import norm_axis, numel, per_element, same_shape
from ..registry import (
    AXIS,
    NUMBER,
    OPTIONAL_NUMBER,
    POS_INT,
    POS_NUMBER,
    Arg,
    OpCtx,
    OpDef,
    choice,
    register,
)
from .examples import ERRORS, EXAMPLES

# name -> (arguments, FLOPs per element, formula for the docs)
ELEMENTWISE: dict[str, tuple[tuple[Arg, ...], int, str]] = {
    "identity": ((), 0, "x"),
    "step": ((), 1, "0 for x < 0, 1 for x >= 0"),
    "sigmoid": ((), 4, "1 / (1 + e^-x)"),
    "tanh": ((), 4, "tanh(x)"),
    "lecun_tanh": ((), 5, "1.7159 tanh(2x/3)"),
    "soboleva_tanh": (
        tuple(Arg(k, NUMBER, 1.0) for k in "abcd"),
        8,
        "(e^(ax) - e^(-bx)) / (e^(cx) + e^(-dx))",
    ),
    "relu": ((), 1, "max(0, x)"),
    "leaky_relu": ((Arg("slope", NUMBER, 0.01),), 2, "x for x >= 0, slope x below"),
    "gelu": ((Arg("approximate", choice("none", "tanh"), "none"),), 8, "x Φ(x)"),
    "elu": ((Arg("alpha", NUMBER, 1.0),), 4, "x for x > 0, alpha (e^x - 1) below"),
    "selu": ((), 4, "1.0507 elu(x, alpha=1.67326)"),
    "silu": ((), 5, "x / (1 + e^-x)"),
    "gaussian": ((), 3, "e^(-x^2)"),
    "softplus": ((Arg("beta", POS_NUMBER, 1.0),), 3, "ln(1 + e^(beta x)) / beta"),
    "relu6": ((), 2, "min(max(0, x), 6) (torch.nn.ReLU6)"),
    "hardsigmoid": ((), 3, "min(max(0, x/6 + 1/2), 1) (torch.nn.Hardsigmoid)"),
    "hardswish": ((), 4, "x hardsigmoid(x) (torch.nn.Hardswish)"),
    "mish": ((), 8, "x tanh(softplus(x)) (torch.nn.Mish)"),
}

for _name, (_args, _cost, _formula) in ELEMENTWISE.items():
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            errors=ERRORS.get(_name, ()),
            args=_args,
            shape=same_shape,
            flops=per_element(_cost),
            category="activation",
            inference_identity=_name == "identity",
            doc=f"Elementwise {_formula}.",
        )
    )


def _hardtanh_shape(ctx: OpCtx) -> TensorType:
    if ctx["min"] >= ctx["max"]:
        raise ctx.fail(
            f"hardtanh clips to [min, max], but min={ctx['min']:g} is not below max={ctx['max']:g}",
            "write hardtanh(min, max) with min < max, e.g. hardtanh(-1, 1)",
        )
    return ctx.x


register(
    OpDef(
        "hardtanh",
        examples=EXAMPLES.get("hardtanh", ()),
        errors=ERRORS.get("hardtanh", ()),
        args=(Arg("min", NUMBER, -1.0), Arg("max", NUMBER, 1.0)),
        shape=_hardtanh_shape,
        flops=per_element(2),
        category="activation",
        doc="Elementwise min(max(x, min), max): x clipped to [min, max] (torch.nn.Hardtanh).",
    )
)



def _clamp_shape(ctx: OpCtx) -> TensorType:
    lo, hi = ctx["min"], ctx["max"]
    if lo is None and hi is None:
        raise ctx.fail(
            "clamp needs a bound, but neither min nor max is given",
            "write clamp(min=...), clamp(max=...) or clamp(min, max)",
        )
    if lo is not None and hi is not None and lo >= hi:
        raise ctx.fail(
            f"clamp clips to [min, max], but min={lo:g} is not below max={hi:g}",
            "write clamp(min, max) with min < max, e.g. clamp(0, 1)",
        )
    return ctx.x


def _clamp_flops(ctx: OpCtx, out: TensorType) -> Dim:
    # one comparison per element for each bound given
    bounds = sum(ctx[k] is not None for k in ("min", "max"))
    return per_element(bounds)(ctx, out)


register(
    OpDef(
        "clamp",
        examples=EXAMPLES.get("clamp", ()),
        errors=ERRORS.get("clamp", ()),
        args=(Arg("min", OPTIONAL_NUMBER, None), Arg("max", OPTIONAL_NUMBER, None)),
        shape=_clamp_shape,
        flops=_clamp_flops,
        category="activation",
        doc="Elementwise x clipped to [min, max], either bound optional (torch.clamp).",
    )
)


def _prelu_shape(ctx: OpCtx) -> TensorType:
    n = ctx["num_parameters"]
    if n != 1 and (ctx.x.rank < 2 or ctx.x.shape[1] != n):
        raise ctx.fail(
            f"prelu(num_parameters={n}) needs {n} channels on axis 1, got {ctx.x}",
            "use num_parameters=1 (one shared slope) or the channel count",
        )
    return ctx.x


def _prelu_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    init = InitSpec("constant", (("value", ctx["init"]),))
    return (ParamSpec("weight", (ctx["num_parameters"],), init),)


register(
    OpDef(
        "prelu",
        examples=EXAMPLES.get("prelu", ()),
        errors=ERRORS.get("prelu", ()),
        args=(Arg("num_parameters", POS_INT, 1), Arg("init", NUMBER, 0.25)),
        shape=_prelu_shape,
        params=_prelu_params,
        flops=per_element(2),
        category="activation",
        doc="x for x >= 0, a learned slope α below (torch.nn.PReLU).",
    )
)


def _softmax_shape(ctx: OpCtx) -> TensorType:
    norm_axis(ctx, ctx["axis"], ctx.x.rank)
    return ctx.x


for _name in ("softmax", "log_softmax"):
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            errors=ERRORS.get(_name, ()),
            args=(Arg("axis", AXIS, -1),),
            shape=_softmax_shape,
            flops=per_element(5),
            category="activation",
            doc=f"{_name} over one axis (default the last).",
        )
    )


def _maxout_shape(ctx: OpCtx) -> TensorType:
    if ctx.x.rank < 1:
        raise ctx.fail(f"maxout needs a features axis, got {ctx.x}")
    k, f = ctx["pieces"], ctx.x.shape[-1]
    groups = exact_div(f, k)
    if groups is None:
        raise ctx.fail(
            f"maxout({k}) splits the last axis into groups of {k}, "
            f"but {ctx.x} has {format_dim(f)} features",
            f"make the width a multiple of {k}",
        )
    return TensorType(ctx.x.shape[:-1] + (groups,), ctx.x.dtype)


register(
    OpDef(
        "maxout",
        examples=EXAMPLES.get("maxout", ()),
        errors=ERRORS.get("maxout", ()),
        args=(Arg("pieces", POS_INT, doc="inputs per group"),),
        shape=_maxout_shape,
        flops=lambda ctx, out: numel(ctx.x),
        category="activation",
        doc="The max over groups of `pieces` consecutive features: [.., F] -> [.., F/pieces].",
    )
)
