"""dense (alias linear): y = x Wᵀ + b on the last axis, like `torch.nn.Linear`.

With `tie=emb` the layer has no weight of its own: W is the table E [vocab, dim] of the
embedding node `emb` (y = x Eᵀ + b, as in weight-tied language models), so the model
holds E once and trains it from both ends. With `weight_norm=true` the weight is
g·v/‖v‖ (weightnorm.py); a tied layer has no weight of its own to reparametrize.
"""

from __future__ import annotations

from ...dims import Dim
from ...ir import ParamSpec, TensorType
from ..common import GLOROT_UNIFORM, ZEROS, numel
from ..registry import BOOL, INIT, POS_INT, Arg, ArgType, OpCtx, OpDef, register
from .examples import ERRORS, EXAMPLES
from .weightnorm import WEIGHT_NORM, weight_params

NODE = ArgType("a node", lambda v: v, kind="tensor")  # the value name of a graph node


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


def _check_tie(ctx: OpCtx, f: int) -> None:
    """tie= names an embedding node whose table [vocab, dim] fits as this layer's weight
    [units, features]. (A node whose own rule failed is reported already.)"""
    name, units = ctx["tie"], ctx["units"]
    node = ctx.nodes.get(name)
    if node is not None and node.type is None:
        return
    if node is None or node.op != "embedding":
        what = f"a {node.op} node" if node is not None else "not a node of this graph"
        raise ctx.fail(
            f"tie= reuses the table of an embedding node, but '{name}' is {what}",
            "give the embedding a node of its own, `emb: x -> embedding(vocab, dim)`, "
            "and write dense(vocab, tie=emb)",
        )
    if ctx["init"] is not None:
        raise ctx.fail(f"dense(tie={name}) has no weight to init: it uses {name}'s table")
    vocab, dim = node.attr("vocab"), node.attr("dim")
    if (units, f) != (vocab, dim):
        raise ctx.fail(
            f"dense({units}, tie={name}) uses {name}'s table [{vocab}, {dim}] transposed: it "
            f"needs units = {vocab} and {dim} input features, got {units} and {ctx.x}",
            f"write dense({vocab}, tie={name}) on a [..., {dim}] input",
        )


def _shape(ctx: OpCtx) -> TensorType:
    f = features(ctx)
    if ctx["tie"] is not None:
        if ctx["weight_norm"]:
            raise ctx.fail(
                f"dense(tie={ctx['tie']}, weight_norm=true): a tied layer has no weight of its "
                f"own to reparametrize, it uses {ctx['tie']}'s table",
                "drop one of the two: tie= shares the table, weight_norm= gives a layer its "
                "own g·v/‖v‖",
            )
        _check_tie(ctx, f)
    # dense on an NCHW map is legal (it acts on the last axis) and almost always a
    # forgotten flatten: that lesson is `dlc lint`'s (DLC109), not a shape check's.
    return TensorType(ctx.x.shape[:-1] + (ctx["units"],), ctx.x.dtype)


def _params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    units, f = ctx["units"], features(ctx)
    bias = (ParamSpec("bias", (units,), ctx["bias_init"] or ZEROS),) if ctx["bias"] else ()
    if ctx["tie"] is not None:
        return bias  # the weight is the embedding's
    weight = ParamSpec("weight", (units, f), ctx.init("init", GLOROT_UNIFORM))
    return weight_params(weight, ctx["weight_norm"]) + bias


def _flops(ctx: OpCtx, out: TensorType) -> Dim:
    per_out = 2 * features(ctx) + (1 if ctx["bias"] else 0)
    return per_out * numel(out)


DENSE = register(
    OpDef(
        "dense",
        examples=EXAMPLES.get("dense", ()),
        errors=ERRORS.get("dense", ()),
        args=(
            Arg("units", POS_INT, doc="output features"),
            Arg("bias", BOOL, True),
            Arg("init", INIT, None, "weight init (default: training.init, else glorot_uniform)"),
            Arg("bias_init", INIT, None, "bias init (default zeros)"),
            Arg("tie", NODE, None, "an embedding node whose table, transposed, is the weight"),
            WEIGHT_NORM,
        ),
        shape=_shape,
        params=_params,
        flops=_flops,
        aliases=("linear",),
        category="linear",
        doc="Fully connected layer on the last axis of [B, ..., F] (torch.nn.Linear); "
        "tie=emb uses the embedding node emb's table as the weight (x Eᵀ + b); "
        "weight_norm=true makes the weight g·v/‖v‖ (torch's weight_norm).",
    )
)
