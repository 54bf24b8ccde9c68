"""The key-value cache mode of the ONNX lowering: a causal transformer's decoder that
takes the keys and values of the tokens before as inputs and returns them with the new
tokens' appended, so each generation step runs only the new token.

The names and layouts are onnxruntime-genai's: for each attention layer N, in graph
order (a transformer_encoder's layers in turn),

    past_key_values.N.key / .value   in   [B, heads, P, d_head]   (P = past tokens, 0 at first)
    present.N.key / .value           out  [B, heads, P + T, d_head]

beside the model's own token input [B, T] (the new tokens) and outputs ([B, T, V] for
the new positions). An encoder-decoder keeps its source input: the encoder runs whole at
every step (its nodes read no new token, so they keep their ordinary rules) and the
decoder's self-attention is cached (transformer_decoder's cross-attention reads the
memory as it is). The past length P is read off past_key_values.0.key; positions are
offset by it (positional_encoding reads rows P .. P+T of its table, learned or
sinusoidal) and so is the causal mask (new token i sees the P past tokens and new
tokens 0..i).

The lowering is the ordinary one (onnx.py's `to_onnx`) with the rules of the ops that
see other positions and read the new tokens (`stepwise`) replaced by their cached forms,
collected from the `onnx_cache.py` of the families that have one (`CACHE_RULES`). Those
rules refuse, with `CacheUnsupported`, what a cache cannot serve: bidirectional attention
over the new tokens, a padding mask or bias on them, a fixed position axis. An op that
mixes positions and has no cached rule (a convolution along T, a recurrence) is not
caught here: runtime/generate/cache.py compares the cached decoder with the full model
before it uses one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..ir import Graph
from .onnx import ONNX_RULES, Rule, to_onnx

if TYPE_CHECKING:
    from .onnx import Emit

CACHE_FAMILIES = ("attention", "embed")
PAST, PRESENT = "past_key_values.{}.{}", "present.{}.{}"
# the symbolic dims of the cache, as onnxruntime-genai's models name them
PAST_LEN, TOTAL_LEN = "past_sequence_length", "total_sequence_length"


class CacheUnsupported(Exception):
    """The model cannot be decoded with a key-value cache; the message says why."""


@dataclass
class KVCache:
    """What the cached rules share while one model is lowered: the nodes that run on
    the new tokens, the cached attention layers' (heads, d_head) in order, and the past
    length, built once."""

    stepwise: frozenset[str] = frozenset()  # the nodes that read the new tokens
    layers: list[tuple[int, int]] = field(default_factory=list)
    past_len: str | None = None

    def add_layer(self, e: Emit, heads: int, d_head: int) -> tuple[str, str, str, str]:
        """A new layer's (past key, past value, present key, present value) names."""
        n = len(self.layers)
        self.layers.append((heads, d_head))
        names = (PAST.format(n, "key"), PAST.format(n, "value"),
                 PRESENT.format(n, "key"), PRESENT.format(n, "value"))  # fmt: skip
        for name in names:
            e.builder.reserve(name)
        return names

    def past_length(self, e: Emit) -> str:
        """P as a 1-D int64 [1]: axis 2 of layer 0's past key."""
        if self.past_len is None:
            first = PAST.format(0, "key")
            e.builder.reserve(first)
            self.past_len = e.op("Shape", first, start=2, end=3, tag="past_length")
        return self.past_len


CACHE_RULES: dict[str, Callable[..., str]] = {}  # rule(e, cache=KVCache)
for _family in CACHE_FAMILIES:
    CACHE_RULES.update(import_module(f"..ops.{_family}.onnx_cache", __package__).CACHE_RULES)


def to_onnx_cached(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    *,
    opset: int | None = None,
    extra_outputs: Sequence[tuple[str, str]] = (),
    metadata: Mapping[str, str] = {},  # noqa: B006 - read only
    tokens: str | None = None,
) -> onnx.ModelProto:
    """The cached decoder of a causal transformer `graph` (see the module's docstring),
    with the graph's outputs and `extra_outputs` (the export's, as `to_onnx`'s) before
    the present keys and values; CacheUnsupported when it has no cache to keep.
    `tokens` is the input of the new tokens (default: `token_input`'s choice); `opset`
    None is the graph's `default_opset`, as to_onnx's (23 for attention, where onnxruntime
    runs the fused op: then each layer's Attention node takes and gives the cache)."""
    cache = KVCache(stepwise(graph, token_input(graph, tokens)))
    rules: dict[str, Rule] = dict(ONNX_RULES)
    rules.update({op: partial(_dispatch, op, rule, cache) for op, rule in CACHE_RULES.items()})
    model = to_onnx(graph, weights, opset=opset, extra_outputs=extra_outputs, metadata=metadata,
                    rules=rules)  # fmt: skip
    if not cache.layers:
        raise CacheUnsupported(
            "the model has no causal attention: there are no keys and values to cache"
        )
    batch = graph.inputs[0].type.shape[0]
    b = batch if isinstance(batch, int) else str(batch)
    for n, (heads, d_head) in enumerate(cache.layers):
        for kind in ("key", "value"):
            past = [b, heads, PAST_LEN, d_head]
            model.graph.input.append(value_info(PAST.format(n, kind), past))
            present = [b, heads, TOTAL_LEN, d_head]
            model.graph.output.append(value_info(PRESENT.format(n, kind), present))
    return model


def token_input(graph: Graph, tokens: str | None = None) -> str:
    """The input that takes the new tokens: `tokens`, else the only integer input, else
    (an encoder-decoder) the integer input whose position axis the first output shares."""
    ints = [i for i in graph.inputs if i.type.dtype.startswith(("int", "uint"))]
    if tokens is not None:
        if tokens not in {i.name for i in ints}:
            raise CacheUnsupported(f"the model has no integer input {tokens!r}")
        return tokens
    if len(ints) == 1:
        return ints[0].name
    steps = graph.types()[graph.outputs[0][1]].shape[1:2]
    matching = [i.name for i in ints if i.type.shape[1:2] == steps]
    if len(matching) != 1:
        raise CacheUnsupported("no one integer input takes the tokens the output scores")
    return matching[0]


def stepwise(graph: Graph, tokens: str) -> frozenset[str]:
    """The nodes that read `tokens`, directly or not: those run on the new tokens alone;
    the others (an encoder of the source) run whole at every step, with their own rules."""
    seen = {tokens}
    for node in graph.nodes:
        if any(i in seen for i in node.inputs):
            seen.add(node.name)
    return frozenset(seen - {tokens})


def _dispatch(op: str, rule: Callable[..., str], cache: KVCache, e: Emit) -> str:
    if e.node.name in cache.stepwise:
        return rule(e, cache=cache)
    return ONNX_RULES[op](e)


def value_info(name: str, dims: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)
