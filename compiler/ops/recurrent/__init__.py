"""The layer library, recurrent nets: rnn, gru, lstm.

Each reads a batch of sequences [B, T, F] (T may be symbolic) like torch.nn.RNN, GRU and
LSTM with `batch_first=True`, with torch's formulas, per layer, direction and step t
(σ the logistic sigmoid, ⊙ the elementwise product):

    rnn   h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),  φ = tanh or relu
    gru   r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z likewise,
          n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    lstm  i, f, o = σ(...), g = tanh(...),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

with zero initial states. A layer above the first reads the layer below's outputs, the
D directions (2 when bidirectional) concatenated; inter-layer `dropout` acts in training
only (nothing follows the top layer).

What comes out: `return=sequence` gives the top layer's h_t for every step, [B, T, D·H]
(forward's features first); `return=last` gives the top layer's final hidden state of
each direction, [B, D·H], which is torch's h_n[-D:]: forward's after step T, and the
backward direction's after *its* last step, which is step 1. (For one direction that is
the sequence output's last step; for two it is not.)

Parameters, named as nn.LSTM's state_dict (G = 1, 3, 4 gates, stacked in torch's gate
order: gru r, z, n; lstm i, f, g, o), for each layer l and direction suffix "" or
"_reverse": weight_ih_l{l} [G·H, in_l] (in_0 = F, in_l = D·H), weight_hh_l{l} [G·H, H],
and with `bias` bias_ih_l{l} and bias_hh_l{l} [G·H]. All start U(-1/√H, 1/√H) as in
torch; `init=` (or training.init) replaces the weight matrices' scheme.
"""

from __future__ import annotations

import math

from ...dims import Dim
from ...ir import InitSpec, ParamSpec, TensorType
from ..linear import features
from ..registry import BOOL, INIT, POS_INT, PROB, Arg, OpCtx, OpDef, choice, register
from .examples import EXAMPLES

DIRECTIONS = ("", "_reverse")  # the state_dict suffix of each direction
RETURNS = choice("sequence", "last")
# Each op's gates, in the order torch stacks their rows in the weights.
GATES = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


def param_name(kind: str, layer: int, direction: int) -> str:
    """The state_dict name of a weight_ih, weight_hh, bias_ih or bias_hh (`kind`) of one
    layer and direction (0 forward, 1 reverse): `weight_ih_l0`, `bias_hh_l1_reverse`."""
    return f"{kind}_l{layer}{DIRECTIONS[direction]}"


def directions(ctx: OpCtx) -> int:
    return 2 if ctx["bidirectional"] else 1


def _input_features(ctx: OpCtx) -> int:
    """F of the [B, T, F] input, which must be known (shapes.py refuses integer inputs)."""
    if ctx.x.rank != 3:
        raise ctx.fail(
            f"{ctx.node.op} needs a batch of sequences [B, T, F], got {ctx.x}",
            "one feature per step is [B, T, 1]; tokens need an embedding(vocab, dim) first",
        )
    return features(ctx)


def _shape(ctx: OpCtx) -> TensorType:
    _input_features(ctx)
    if ctx["dropout"] > 0 and ctx["layers"] == 1:
        ctx.warn(
            f"dropout={ctx['dropout']} of a one-layer {ctx.node.op} does nothing: it acts "
            "between stacked layers",
            "use layers=2 or more, or a dropout op after it",
        )
    b, t, _ = ctx.x.shape
    width = directions(ctx) * ctx["hidden"]
    shape = (b, width) if ctx["return"] == "last" else (b, t, width)
    return TensorType(shape, ctx.x.dtype)


def torch_uniform(hidden: int) -> InitSpec:
    """torch's init of every recurrent parameter: U(-1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden)
    return InitSpec("uniform", (("a", -bound), ("b", bound)))


def _param_rule(gates: int):  # noqa: ANN202 - a ParamRule
    def params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
        h, d = ctx["hidden"], directions(ctx)
        rows, default = gates * h, torch_uniform(h)
        weight_init = ctx.init("init", default)
        specs: list[ParamSpec] = []
        for layer in range(ctx["layers"]):
            width = _input_features(ctx) if layer == 0 else d * h
            for k in range(d):
                specs += [
                    ParamSpec(param_name("weight_ih", layer, k), (rows, width), weight_init),
                    ParamSpec(param_name("weight_hh", layer, k), (rows, h), weight_init),
                ]
                if ctx["bias"]:
                    specs += [
                        ParamSpec(param_name("bias_ih", layer, k), (rows,), default),
                        ParamSpec(param_name("bias_hh", layer, k), (rows,), default),
                    ]
        return tuple(specs)

    return params


def _flop_rule(gates: int, pointwise: int):  # noqa: ANN202 - a FlopRule
    """Per step, layer and direction: 2·G·H·(in + H) for the two matrix-vector products,
    G·H to add them, 2·G·H for the biases, and `pointwise`·H for the gates' functions and
    products (rnn 1: φ; gru 6: 2 σ, r ⊙, tanh, and h' = n + z ⊙ (h - n); lstm 9: 3 σ,
    2 tanh, f ⊙ c + i ⊙ g, o ⊙); times B·T."""

    def flops(ctx: OpCtx, out: TensorType) -> Dim:
        h, d = ctx["hidden"], directions(ctx)
        per_step = 0
        for layer in range(ctx["layers"]):
            width = _input_features(ctx) if layer == 0 else d * h
            bias = 2 * gates * h if ctx["bias"] else 0
            per_step += d * (2 * gates * h * (width + h) + gates * h + bias + pointwise * h)
        b, t, _ = ctx.x.shape
        return per_step * b * t

    return flops


def _args(*extra: Arg) -> tuple[Arg, ...]:
    return (
        Arg("hidden", POS_INT, doc="hidden units per direction (torch's hidden_size)"),
        Arg("layers", POS_INT, 1, "stacked layers (torch's num_layers)"),
        Arg("bidirectional", BOOL, False, "also run backwards and concatenate both"),
        Arg("dropout", PROB, 0.0, "dropout on the outputs of every layer but the top one"),
        *extra,
        Arg("return", RETURNS, "sequence", "every step's [B, T, D·H], or the last [B, D·H]"),
        Arg("bias", BOOL, True),
        Arg("init", INIT, None, "weight init (default: training.init, else U(±1/√hidden))"),
    )


def _recurrent(name: str, pointwise: int, doc: str, *extra: Arg) -> OpDef:
    gates = len(GATES[name])
    return register(
        OpDef(
            name,
            examples=EXAMPLES.get(name, ()),
            args=_args(*extra),
            shape=_shape,
            params=_param_rule(gates),
            flops=_flop_rule(gates, pointwise),
            category="sequence",
            doc=doc,
        )
    )


RNN = _recurrent(
    "rnn",
    1,
    "Simple (Elman) RNN on [B, T, F], h_t = φ(W_ih x_t + W_hh h_{t-1} + b) (torch.nn.RNN).",
    Arg("nonlinearity", choice("tanh", "relu"), "tanh", "φ"),
)
GRU = _recurrent("gru", 6, "Gated recurrent unit net on [B, T, F] (torch.nn.GRU).")
LSTM = _recurrent("lstm", 9, "Long short-term memory net on [B, T, F] (torch.nn.LSTM).")
