"""The ONNX rules of recurrent nets (see lower/onnx.py's `Emit`).

Each layer is one native `RNN` / `GRU` / `LSTM` node (`direction=bidirectional` for two
directions), so onnxruntime runs its fused kernels. These take time-major input
(`layout=0`: onnxruntime refuses `layout=1`), so the [B, T, F] input is transposed to
[T, B, F] once, and the result back at the end.

The weights stay in the initializers of torch's names and layout (weight_ih_l0, ...:
trained weights move by name); the W, R and B inputs ONNX wants are computed from them
with ops onnxruntime folds into constants at load time:

    W [D, G·H, in]   the directions' weight_ih, rows Gathered into ONNX's gate order
    R [D, G·H, H]    weight_hh likewise
    B [D, 2·G·H]     bias_ih and bias_hh, each reordered, concatenated

A given initial state [layers·D, B, H] (or [B, H], unsqueezed) goes to each layer's node
as its `initial_h` / `initial_c` input, the layer's D rows Sliced from it. A `state` node
(`enc.h`, `enc.c`) names the Y_h / Y_c outputs of the recurrent node's own native nodes
(one per layer, Concatenated): the same nodes, nothing runs twice.

ONNX's gate orders differ from torch's: LSTM i, o, f, c (torch i, f, g, o) and GRU z, r, h
(torch r, z, n); torch's GRU applies the reset gate after the hidden product, which is
ONNX's `linear_before_reset=1`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from onnx import helper

from . import GATES, param_name

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule

Attrs = dict[str, Any]
# ONNX's gate order of each op, in the names of GATES (torch's order).
ONNX_GATES = {"rnn": ("h",), "gru": ("z", "r", "n"), "lstm": ("i", "o", "f", "g")}


def _order(op: str) -> tuple[int, ...]:
    """ONNX's gates as indices of torch's."""
    return tuple(GATES[op].index(gate) for gate in ONNX_GATES[op])


def _gather_rows(e: Emit, order: Sequence[int], hidden: int) -> str | None:
    """The row index that puts torch's gates (blocks of `hidden` rows) into ONNX's
    `order`, or None where the order is torch's."""
    if list(order) == sorted(order):
        return None
    rows = [gate * hidden + k for gate in order for k in range(hidden)]
    return e.ints(rows, "gate_rows")


def _reordered(e: Emit, param: str, rows: str | None) -> str:
    w = e.weight(param)
    return w if rows is None else e.op("Gather", w, rows, axis=0, tag="gates")


def _stack(e: Emit, parts: list[str], axes: str) -> str:
    """[D, ...] from the directions' parts: unsqueezed, then concatenated."""
    stacked = [e.op("Unsqueeze", p, axes, tag="direction") for p in parts]
    return stacked[0] if len(stacked) == 1 else e.op("Concat", *stacked, axis=0)


def _layer_inputs(e: Emit, layer: int, rows: str | None, axes: str) -> list[str]:
    """W, R and (with bias) B of one layer, all directions stacked."""
    d = 2 if e.attr("bidirectional") else 1
    w = _stack(e, [_reordered(e, param_name("weight_ih", layer, k), rows) for k in range(d)], axes)
    r = _stack(e, [_reordered(e, param_name("weight_hh", layer, k), rows) for k in range(d)], axes)
    if not e.attr("bias"):
        return [w, r]
    return [w, r, _stack(e, [_bias(e, layer, k, rows) for k in range(d)], axes)]


def _bias(e: Emit, layer: int, direction: int, rows: str | None) -> str:
    """ONNX's [Wb; Rb] of one direction: bias_ih and bias_hh, reordered, one after the other."""
    ih, hh = (
        _reordered(e, param_name(kind, layer, direction), rows) for kind in ("bias_ih", "bias_hh")
    )
    return e.op("Concat", ih, hh, axis=0, tag="bias")


def _cell_name(net: str, op_type: str) -> str:
    """The ONNX name of the first native node of IR node `net` (the next layers': `_1`, ...)."""
    return f"{net}.__{op_type.lower()}"


def _cell(e: Emit, op_type: str, inputs: list[str], output: int, **attrs: Any) -> str:
    """One RNN/GRU/LSTM node and the name of its output number `output` (0: Y, all steps
    [T, D, B, H]; 1: Y_h, the final states [D, B, H]); the others are left unnamed.
    `Emit.op` makes one-output nodes, so this one is added to the builder directly."""
    name = e.builder.fresh(_cell_name(e.node.name, op_type))
    outputs = [""] * output + [name]
    e.builder.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
    return name


def _initial(e: Emit, layer: int, d: int) -> list[str]:
    """One layer's rows of each given initial state ([D, B, H]: initial_h, initial_c)."""
    out = []
    for k, state in enumerate(e.inputs[1:]):
        if e.types[1 + k].rank == 2:  # [B, H] of a one-layer, one-direction net
            out.append(e.op("Unsqueeze", state, e.ints([0], "axes"), tag="initial"))
        elif e.attr("layers") == 1:
            out.append(state)
        else:
            bounds = e.ints([layer * d], "start"), e.ints([(layer + 1) * d], "end")
            out.append(e.op("Slice", state, *bounds, e.ints([0], "axes"), tag="initial"))
    return out


def _inputs(e: Emit, x: str, layer: int, rows: str | None, axes: str, d: int) -> list[str]:
    """A layer node's inputs: X, W, R, B; with an initial state also sequence_lens (none)
    and initial_h (and initial_c), B "" where the net has no bias."""
    inputs = [x, *_layer_inputs(e, layer, rows, axes)]
    states = _initial(e, layer, d)
    if not states:
        return inputs
    return inputs + [""] * (4 - len(inputs)) + [""] + states


def _features(e: Emit, x: str, perm: list[int], width: int, out: bool = False) -> str:
    """Transpose, then merge the last two axes (directions, hidden) into one of `width`;
    0 in a Reshape keeps that dim (B and T may be symbolic)."""
    moved = e.op("Transpose", x, perm=perm)
    keep = [0] * (len(perm) - 2)
    return e.op("Reshape", moved, e.ints([*keep, width]), out=out)


def _recurrent(op_type: str, order: Sequence[int], extra: Callable[[Emit, int], Attrs]) -> Rule:
    """The rule of one op: ONNX `op_type`, its gates as indices of torch's (`order`),
    and the op's own attributes (`extra`, given the Emit and the number of directions)."""

    def rule(e: Emit) -> str:
        h, layers = e.attr("hidden"), e.attr("layers")
        d = 2 if e.attr("bidirectional") else 1
        direction = "bidirectional" if d == 2 else "forward"
        attrs = {"hidden_size": h, "direction": direction, **extra(e, d)}
        rows, axes = _gather_rows(e, order, h), e.ints([0], "axes")
        x = e.op("Transpose", e.x, perm=[1, 0, 2], tag="time_major")  # [T, B, F]
        for layer in range(layers - 1):  # [T, D, B, H] -> the next layer's [T, B, D·H]
            y = _cell(e, op_type, _inputs(e, x, layer, rows, axes, d), 0, **attrs)
            x = _features(e, y, [0, 2, 1, 3], d * h)
        top = _inputs(e, x, layers - 1, rows, axes, d)
        if e.attr("return") == "last":  # Y_h [D, B, H] -> [B, D·H]
            y_h = _cell(e, op_type, top, 1, **attrs)
            return _features(e, y_h, [1, 0, 2], d * h, out=True)
        y = _cell(e, op_type, top, 0, **attrs)  # [T, D, B, H] -> [B, T, D·H]
        return _features(e, y, [2, 0, 1, 3], d * h, out=True)

    return rule


def _activations(e: Emit, d: int) -> Attrs:
    """The RNN's φ for each direction: Tanh or Relu."""
    return {"activations": [e.attr("nonlinearity").capitalize()] * d}


def _state(e: Emit) -> str:
    """Part h or c of the final state of the recurrent node that is the input: output Y_h
    or Y_c of its native nodes (named here where nothing used it yet), one per layer, each
    [D, B, H], Concatenated in layer order into torch's h_n / c_n [layers·D, B, H]."""
    net = e.builder.graph.node(e.node.inputs[0])
    op_type = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[net.op]
    index = 1 + "hc".index(e.attr("part"))  # Y_h, Y_c
    first = _cell_name(net.name, op_type)
    cells = [
        n
        for n in e.builder.nodes
        if n.op_type == op_type and re.fullmatch(re.escape(first) + r"(_\d+)?", n.name)
    ]
    assert len(cells) == net.attr("layers"), f"{net.name}'s native nodes"
    parts = []
    for cell in cells:
        while len(cell.output) <= index:
            cell.output.append("")
        if not cell.output[index]:
            single = len(cells) == 1
            cell.output[index] = e.out if single else e.builder.fresh(f"{cell.name}.__state")
            if single:
                return e.out
        parts.append(cell.output[index])
    if len(parts) == 1:
        return e.op("Identity", parts[0], out=True)
    return e.op("Concat", *parts, axis=0, out=True)


ONNX_RULES: dict[str, Rule] = {
    "rnn": _recurrent("RNN", _order("rnn"), _activations),
    "gru": _recurrent("GRU", _order("gru"), lambda e, d: {"linear_before_reset": 1}),
    "lstm": _recurrent("LSTM", _order("lstm"), lambda e, d: {}),
    "state": _state,
}
