"""The torch rules of recurrent nets (see lower/lowered.py): each op
becomes the nn.RNN / nn.GRU / nn.LSTM subclass of modules.py, batch first, called on x
and the initial state if given; it returns (value, h_n[, c_n]), whose first item is the
node's value, and a `state` node is item 1 (h) or 2 (c) of that same call's result."""

from __future__ import annotations

from torch import nn

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule
from . import modules


def _recurrent(module: type[nn.Module], *extra: str) -> Rule:
    """The module constructed as torch's (input_size, hidden_size, num_layers=...), plus
    the node attributes named in `extra` as keyword arguments of the same name."""

    def rule(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
        features = ins[0].shape[-1]
        assert isinstance(features, int), "shape inference guarantees a concrete F"
        layers = node.attr("layers")
        kwargs = {
            "num_layers": layers,
            "bias": node.attr("bias"),
            # torch warns about dropout with one layer, where it does nothing (dlc warns too)
            "dropout": node.attr("dropout") if layers > 1 else 0.0,
            "bidirectional": node.attr("bidirectional"),
            **{name: node.attr(name) for name in extra},
            "last": node.attr("return") == "last",
        }
        return Lowered(module, (features, node.attr("hidden")), kwargs, item=0)

    return rule


TORCH_RULES: dict[str, Rule] = {
    "rnn": _recurrent(modules.SeqRNN, "nonlinearity"),
    "gru": _recurrent(modules.SeqGRU),
    "lstm": _recurrent(modules.SeqLSTM),
    "state": lambda node, ins: Lowered(take=1 + "hc".index(node.attr("part"))),
}
