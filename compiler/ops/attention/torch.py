"""The torch rules of attention and transformers (see lower/lowered.py).

Each op is one module of modules.py, called on x (and the memory, for the ops
with two inputs); its parameters carry the IR's names.
"""

from __future__ import annotations

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule
from . import modules
from .masks import input_roles


def _inputs(node: Node) -> tuple[str, ...]:
    """What the module's tensors after x are, in the node's order (memory, mask, ...)."""
    return tuple(r for r in input_roles(node) if r != "x")


def _dim(ins: tuple[TensorType, ...]) -> int:
    d = ins[0].shape[-1]
    assert isinstance(d, int), "shape inference guarantees a concrete model width"
    return d


def _attention(causal: bool | None) -> Rule:
    """Attention(D, heads, causal, dropout, bias); causal None: the node's attribute."""

    def rule(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
        kwargs = {
            "causal": node.attr("causal") if causal is None else causal,
            "dropout": node.attr("dropout"),
            "bias": node.attr("bias"),
            "scale": node.attr("scale"),
            "inputs": _inputs(node),
        }
        return Lowered(modules.Attention, (_dim(ins), node.attr("heads")), kwargs)

    return rule


def _stack(module: type[modules.TransformerEncoder] | type[modules.TransformerDecoder]) -> Rule:
    def rule(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
        args = (_dim(ins), node.attr("layers"), node.attr("heads"), node.attr("ff"))
        keys = ("dropout", "activation", "norm_first", "causal", "eps", "scale")
        kwargs = {k: node.attr(k) for k in keys}
        return Lowered(module, args, {**kwargs, "inputs": _inputs(node)})

    return rule


TORCH_RULES: dict[str, Rule] = {
    "self_attention": _attention(None),
    "multihead_cross_attention": _attention(False),
    "transformer_encoder": _stack(modules.TransformerEncoder),
    "transformer_decoder_layers": _stack(modules.TransformerDecoder),
}
