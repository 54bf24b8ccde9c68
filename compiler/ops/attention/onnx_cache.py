"""The cached ONNX rules of causal self-attention (lower/onnx_cached.py's key-value cache
mode): the new tokens' keys and values are Concatenated behind the past ones along the
position axis, written out as the layer's `present.N.key/value`, and the new queries
attend over all of them under the causal mask offset by the past length.

The attention is the plain MatMul/Softmax pattern (onnx.py's `_pattern`, written out
here on [B, heads, T, d_head] heads so that the cache keeps onnxruntime-genai's layout);
the projections, the feed-forward sublayer, the residual layer norms and the decoder's
cross-attention over the memory are onnx.py's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from onnx import helper

from ..linear.onnx import linear
from . import attention_param_names
from .masks import input_roles
from .onnx import _feed_forward, _residual, attention, scores_term

if TYPE_CHECKING:
    from ...lower.onnx import Emit
    from ...lower.onnx_cached import KVCache


def _unsupported(message: str) -> Exception:
    from ...lower.onnx_cached import CacheUnsupported

    return CacheUnsupported(message)


def _check(e: Emit) -> None:
    """A cache serves causal attention over the tokens alone, on a symbolic T."""
    if not e.attr("causal"):
        raise _unsupported(f"{e.node.op} {e.node.name} is not causal: each position sees "
                           "the ones after it, which a cache cannot hold")  # fmt: skip
    if e.attr("mask") or e.attr("attn_bias"):
        raise _unsupported(f"{e.node.op} {e.node.name} takes a mask or bias input")
    if isinstance(e.types[0].shape[1], int):
        raise _unsupported(f"{e.node.name}'s position axis is fixed ({e.types[0].shape[1]})")


def causal_mask(e: Emit, x: str, cache: KVCache) -> str:
    """[T, P + T]: -inf where key j is after query i (j > P + i), 0 elsewhere."""
    past = cache.past_length(e)
    t = e.op("Shape", x, start=1, end=2, tag="t")
    total = e.op("Add", past, t, tag="total")
    fill = helper.make_tensor("value", e.elem_type, [1], [-np.inf])
    full = e.op("ConstantOfShape", e.op("Concat", t, total, axis=0, tag="shape"), value=fill)
    k = e.op("Add", e.op("Squeeze", past, e.ints([0], "axes"), tag="p"),
             e.const(1, "one", np.int64), tag="diagonal")  # fmt: skip
    return e.op("Trilu", full, k, upper=1, tag="causal_mask")


def _heads(e: Emit, t: str, heads: int, d_head: int) -> str:
    """[B, T, D] -> [B, heads, T, d_head]."""
    split = e.op("Reshape", t, e.ints([0, 0, heads, d_head]), tag="split_heads")
    return e.op("Transpose", split, perm=[0, 2, 1, 3])


def cached_attention(
    e: Emit, x: str, prefix: str, mask: str, cache: KVCache, bias: bool, out: bool = False
) -> str:
    """Self-attention of the new tokens x [B, T, D] over the past and new keys, one
    cached layer: `present = Concat(past, new)` for the keys and values."""
    dim, heads = e.types[0].shape[-1], e.attr("heads")
    assert isinstance(dim, int), "shape inference guarantees a concrete model width"
    d_head = dim // heads
    names = attention_param_names(prefix)
    w = e.weight(names.in_proj_weight)
    b = e.weight(names.in_proj_bias) if bias else None

    def rows(t: str, i: int, tag: str) -> str:
        starts, ends = e.ints([i * dim], "start"), e.ints([(i + 1) * dim], "end")
        return e.op("Slice", t, starts, ends, e.ints([0], "axes"), tag=tag)

    def project(i: int, n: str) -> str:
        b_i = rows(b, i, f"b_{n}") if b is not None else None
        return _heads(e, linear(e, x, 3, rows(w, i, f"w_{n}"), b_i, False), heads, d_head)

    past_k, past_v, present_k, present_v = cache.add_layer(e, heads, d_head)
    q, k_new, v_new = project(0, "q"), project(1, "k"), project(2, "v")
    for past, new, present in ((past_k, k_new, present_k), (past_v, v_new, present_v)):
        e.builder.node("Concat", [past, new], present, e.builder.fresh(f"{present}.__concat"),
                       axis=2)  # fmt: skip
    scale = e.attr("scale")
    scale = 1 / math.sqrt(d_head) if scale is None else scale
    scores = e.op("MatMul", q, e.op("Transpose", present_k, perm=[0, 1, 3, 2], tag="k_t"))
    if scale != 1:
        scores = e.op("Mul", scores, e.const(scale, "scale"))
    probs = e.op("Softmax", e.op("Add", scores, mask, tag="masked"), axis=-1)
    y = e.op("Transpose", e.op("MatMul", probs, present_v), perm=[0, 2, 1, 3])
    merged = e.op("Reshape", y, e.ints([0, 0, dim]), tag="merge_heads")
    w_o = e.weight(names.out_proj_weight)
    b_o = e.weight(names.out_proj_bias) if bias else None
    return linear(e, merged, 3, w_o, b_o, out)


def _self_attention(e: Emit, cache: KVCache) -> str:
    _check(e)
    mask = causal_mask(e, e.x, cache)
    return cached_attention(e, e.x, "", mask, cache, e.attr("bias"), out=True)


def _encoder(e: Emit, cache: KVCache) -> str:
    """onnx.py's `_encoder` with each layer's self-attention cached."""
    _check(e)
    mask = causal_mask(e, e.x, cache)
    x, n = e.x, e.attr("layers")
    for i in range(n):
        p = f"layers.{i}."

        def attend(h: str, p: str = p) -> str:
            return cached_attention(e, h, f"{p}self_attn.", mask, cache, True)

        steps = [(attend, f"{p}norm1"), (_feed_forward(e, p), f"{p}norm2")]
        for j, (f, norm) in enumerate(steps):
            x = _residual(e, x, f, norm, out=i == n - 1 and j == len(steps) - 1)
    return x


def _decoder(e: Emit, cache: KVCache) -> str:
    """onnx.py's `_decoder` with each layer's self-attention cached; the cross-attention
    reads the memory (the encoder's output, recomputed at every step) as it does there."""
    _check(e)
    roles = input_roles(e.node)
    memory = e.inputs[roles["memory"]]
    memory_mask = e.inputs[roles["memory_mask"]] if "memory_mask" in roles else None
    cross_term = scores_term(e, e.x, memory_mask, None, False)
    mask = causal_mask(e, e.x, cache)
    x, n = e.x, e.attr("layers")
    for i in range(n):
        p = f"layers.{i}."

        def attend(h: str, p: str = p) -> str:
            return cached_attention(e, h, f"{p}self_attn.", mask, cache, True)

        def cross(h: str, p: str = p) -> str:
            return attention(e, h, memory, f"{p}multihead_attn.", cross_term, True)

        steps = [(attend, f"{p}norm1"), (cross, f"{p}norm2"), (_feed_forward(e, p), f"{p}norm3")]
        for j, (f, norm) in enumerate(steps):
            x = _residual(e, x, f, norm, out=i == n - 1 and j == len(steps) - 1)
    return x


CACHE_RULES = {
    "self_attention": _self_attention,
    "transformer_encoder": _encoder,
    "transformer_decoder_layers": _decoder,
}
