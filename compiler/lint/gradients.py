"""Rules about how gradients flow at init: saturating stacks, inits that don't fit the
activation, and weights that start identical."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Loc
from ..ir import InitSpec, Node
from .registry import Finding, LintContext, rule

SATURATING = frozenset({"sigmoid", "tanh", "lecun_tanh", "soboleva_tanh", "hardsigmoid"})
RELU_FAMILY = frozenset(
    {"relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "relu6", "hardswish", "mish"}
)
GLOROT = frozenset({"glorot_normal", "glorot_uniform", "lecun_normal", "lecun_uniform"})
HE = frozenset({"he_normal", "he_uniform"})
# Between a weighted layer and its activation these leave the init's variance argument
# as it is. A norm does not: it rescales whatever the init gave, so a layer followed by
# one has no activation to match.
PASS_THROUGH = frozenset({"dropout", "flatten", "reshape", "permute", "stochastic_depth"})
WEIGHTED = frozenset({"dense", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                      "conv_transpose2d"})  # fmt: skip
# Depth at which a saturating stack is worth a warning: 0.25**5 ≈ 1e-3.
DEEP = 5


@rule(
    "DLC101",
    "vanishing-gradient",
    "a deep sigmoid/tanh stack without residuals",
    "Every path from the input to an output passes through many sigmoid/tanh layers; "
    "σ' ≤ 0.25 (tanh' ≤ 1, far less once units saturate), so the gradient that reaches "
    "the first layers shrinks geometrically with depth.",
)
def vanishing_gradient(ctx: LintContext) -> Iterator[Finding]:
    # depth[v]: the fewest saturating activations on any path from a graph input to v. A
    # gradient sums over paths, so one short path (a residual's skip) carries it around.
    depth: dict[str, int] = {i.name: 0 for i in ctx.graph.inputs}
    first: dict[str, Node | None] = {i.name: None for i in ctx.graph.inputs}
    for n in ctx.nodes:
        known = [i for i in n.inputs if i in depth]
        if not known:
            depth[n.name], first[n.name] = 0, None
            continue
        best = min(known, key=lambda i: depth[i])
        depth[n.name] = depth[best] + (n.op in SATURATING)
        first[n.name] = first[best] or (n if n.op in SATURATING else None)
    for _, value in ctx.graph.outputs:
        d, node = depth.get(value, 0), first.get(value)
        if d >= DEEP and node is not None:
            bound = 0.25**d
            yield Finding(
                f"{d} sigmoid/tanh layers on every path from the input to the output, and no "
                f"residual around them: σ' ≤ 0.25, so {d} sigmoid layers scale the gradient "
                f"that reaches the first layer by at most 0.25^{d} ≈ {bound:.0e} (tanh' ≤ 1, "
                f"and far less once its units saturate)",
                node.loc,
                "use relu (with init=he_normal) in the hidden layers, or add residual(...) "
                "connections or batchnorm between them",
            )
            return


def _layer_init(ctx: LintContext, n: Node) -> tuple[InitSpec, bool] | None:
    """The init of `n`'s weight and whether the spec chose it (init= or training.init)."""
    weight = next((p for p in n.params if p.name in ("weight", "v") and p.trainable), None)
    if weight is None:
        return None
    explicit = dict(n.attrs).get("init") is not None or ctx.checked.default_init is not None
    return weight.init, explicit


def _init_loc(ctx: LintContext, n: Node) -> Loc | None:
    """Where the layer's init was chosen: its init=, else training.init, else itself."""
    if dict(n.attrs).get("init") is None and ctx.checked.default_init is not None:
        return ctx.spec_loc("training", "init")
    return n.loc


@rule(
    "DLC102",
    "init-activation",
    "an init that does not fit the activation",
    "He init keeps the variance of a ReLU-family layer's outputs at 1 (Var(w) = 2/fan_in); "
    "Glorot/LeCun (1/fan_in, 2/(fan_in+fan_out)) fit tanh, sigmoid and SELU.",
)
def init_activation(ctx: LintContext) -> Iterator[Finding]:
    for n in ctx.nodes:
        if n.op not in WEIGHTED:
            continue
        chosen = _layer_init(ctx, n)
        if chosen is None or not chosen[1]:
            continue  # the default init: the spec made no choice to lint
        init = chosen[0].name
        acts = {u.op for u in ctx.walk_through(n, PASS_THROUGH)}
        if len(acts) != 1:
            continue
        (act,) = acts
        if act in RELU_FAMILY and init in GLOROT:
            fix = "he_normal"
            why = (
                f"{act} zeroes about half of its inputs, so the signal's variance shrinks "
                "layer by layer; He's 2/fan_in makes up for it"
            )
        elif act in SATURATING and init in HE:
            fix, why = "glorot_uniform", f"{init} doubles the variance and saturates {act}"
        elif act == "selu" and init in HE | GLOROT - {"lecun_normal"}:
            fix, why = "lecun_normal", "SELU self-normalizes only from lecun_normal"
        else:
            continue
        yield Finding(
            f"{n.op} '{n.name}' feeds {act} but starts from {init}: {why}",
            _init_loc(ctx, n),
            f"write {n.op}(..., init={fix}) (He for the ReLU family, Glorot/LeCun for "
            "tanh/sigmoid, lecun_normal for SELU)",
        )


def _constant(init: InitSpec) -> float | None:
    """The value every entry starts at, when the init draws no random numbers."""
    if init.name == "zeros":
        return 0.0
    if init.name == "ones":
        return 1.0
    if init.name == "constant":
        return float(init.arg("value"))
    if init.name == "uniform" and init.arg("a", -0.05) == init.arg("b", 0.05):
        return float(init.arg("a"))
    return None


@rule(
    "DLC103",
    "constant-init",
    "zero or constant weight init",
    "Weights that start equal get equal gradients: every unit of the layer computes the "
    "same function forever (the symmetry is never broken).",
)
def constant_init(ctx: LintContext) -> Iterator[Finding]:
    for n in ctx.nodes:
        for p in n.params:
            if not p.trainable or len(p.shape) < 2 or p.shape[0] < 2:
                continue  # biases, norm scales and a single unit may start constant
            value = _constant(p.init)
            if value is None:
                continue
            yield Finding(
                f"{n.op} '{n.name}' starts its {p.name} {list(p.shape)} at {p.init}: every "
                f"unit gets the same gradient and stays identical to the others",
                _init_loc(ctx, n),
                "use a random init: he_normal before relu, glorot_uniform before tanh/sigmoid",
            )
            break
