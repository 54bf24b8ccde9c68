"""The layer library, recurrent nets: rnn, gru, lstm.

Each reads a batch of sequences [B, T, F] (T may be symbolic) like torch.nn.RNN, GRU and
LSTM with `batch_first=True`, with torch's formulas, per layer, direction and step t
(σ the logistic sigmoid, ⊙ the elementwise product):

    rnn   h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),  φ = tanh or relu
    gru   r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z likewise,
          n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    lstm  i, f, o = σ(...), g = tanh(...),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

from zero initial states, or from `initial=` (below). A layer above the first reads the
layer below's outputs, the D directions (2 when bidirectional) concatenated; inter-layer
`dropout` acts in training only (nothing follows the top layer).

What comes out: `return=sequence` gives the top layer's h_t for every step, [B, T, D·H]
(forward's features first); `return=last` gives the top layer's final hidden state of
each direction, [B, D·H], which is torch's h_n[-D:]: forward's after step T, and the
backward direction's after *its* last step, which is step 1. (For one direction that is
the sequence output's last step; for two it is not.)

The state, torch's h_n (and c_n): `initial=` starts the net from one, and a graph node's
final state is `enc.h` (and `enc.c` of an lstm), both [layers·D, B, H] with torch's order
(layer 0's forward, layer 0's backward, layer 1's forward, ...; one direction: the layers
in order). `initial=` takes, per part, that shape or, where layers·D = 1, [B, H] too:

    gru(64, initial=enc)          enc an rnn, gru or lstm node: its final h
    lstm(64, initial=enc)         enc an lstm node: its final (h, c)
    lstm(64, initial=[h, c])      any two tensors, e.g. h: z -> dense(64) -> tanh
    gru(64, initial=h)            any tensor: h0 itself
    lstm(64, initial=none)        zeros: the default (useful as a block's argument)

`enc.h` and `enc.c` are nodes of the internal op `state` (state_refs.py), which take
the part from what the net computes anyway (torch's second and third results, the Y_h
and Y_c outputs of the same native ONNX nodes): nothing runs twice. The state of a
bidirectional net is both directions' of each layer, as torch's.

Parameters, named as nn.LSTM's state_dict (G = 1, 3, 4 gates, stacked in torch's gate
order: gru r, z, n; lstm i, f, g, o), for each layer l and direction suffix "" or
"_reverse": weight_ih_l{l} [G·H, in_l] (in_0 = F, in_l = D·H), weight_hh_l{l} [G·H, H],
and with `bias` bias_ih_l{l} and bias_hh_l{l} [G·H]. All start U(-1/√H, 1/√H) as in
torch; `init=` (or training.init) replaces the weight matrices' scheme.
"""

from __future__ import annotations

import math

from ...dims import Dim, dims_equal, format_shape
from ...ir import InitSpec, ParamSpec, TensorType
from ..linear import features
from ..registry import (
    BOOL,
    INIT,
    INITIAL_STATE,
    POS_INT,
    PROB,
    Arg,
    OpCtx,
    OpDef,
    choice,
    register,
)
from .examples import ERRORS, EXAMPLES

DIRECTIONS = ("", "_reverse")  # the state_dict suffix of each direction
STATE = {"rnn": ("h",), "gru": ("h",), "lstm": ("h", "c")}  # the parts of each op's state
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
    _check_initial(ctx)
    width = directions(ctx) * ctx["hidden"]
    shape = (b, width) if ctx["return"] == "last" else (b, t, width)
    return TensorType(shape, ctx.x.dtype)


def _check_initial(ctx: OpCtx) -> None:
    """Each initial state input (after x, one per part of the state) is [layers·D, B, H],
    or [B, H] where layers·D = 1."""
    op, b, h = ctx.node.op, ctx.x.shape[0], ctx["hidden"]
    stack = ctx["layers"] * directions(ctx)
    for part, t in zip(STATE[op], ctx.inputs[1:], strict=False):
        full = (stack, b, h)
        ok = t.rank == 3 and all(dims_equal(d, w) for d, w in zip(t.shape, full, strict=True))
        ok = ok or stack == 1 and t.rank == 2 and dims_equal(t.shape[0], b) and t.shape[1] == h
        if not ok:
            short = f" or {format_shape((b, h))}" if stack == 1 else ""
            raise ctx.fail(
                f"{op} starts from an initial {part} of {t}, but its state is "
                f"{format_shape(full)}{short}",
                f"torch's {part}0: [layers·directions, B, hidden] = {format_shape(full)}",
            )


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
        Arg(
            "initial",
            INITIAL_STATE,
            None,
            "the state to start from (h, or an lstm's [h, c]): "
            "a recurrent node or tensors [layers·D, B, H] (or [B, H])",
        ),
    )


def _recurrent(name: str, pointwise: int, doc: str, *extra: Arg) -> OpDef:
    gates = len(GATES[name])
    return register(
        OpDef(
            name,
            examples=EXAMPLES.get(name, ()),
            errors=ERRORS.get(name, ()),
            args=_args(*extra),
            arity=(1, 1 + len(STATE[name])),
            state=STATE[name],
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


def _state_shape(ctx: OpCtx) -> TensorType:
    """[layers·D, B, H] of the recurrent node that is the input."""
    net = ctx.nodes[ctx.node.inputs[0]]
    assert net.op in STATE and ctx["part"] in STATE[net.op], "elaboration checks the part"
    stack = net.attr("layers") * (2 if net.attr("bidirectional") else 1)
    return TensorType((stack, ctx.x.shape[0], net.attr("hidden")), ctx.x.dtype)


register(
    OpDef(
        "state",
        examples=EXAMPLES.get("state", ()),
        args=(Arg("part", choice("h", "c"), doc="h, or an lstm's cell state c"),),
        shape=_state_shape,
        category="sequence",
        internal=True,
        doc="A part of a recurrent node's final state, torch's h_n or c_n [layers·D, B, H] "
        "(`enc.h`, `enc.c`; `initial=enc`).",
    )
)
