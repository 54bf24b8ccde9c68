"""The cached ONNX rules of causal self-attention (lower/onnx_cached.py's key-value cache
mode): the new tokens' keys and values are Concatenated behind the past ones along the
position axis, written out as the layer's `present.N.key/value`, and the new queries
attend over all of them under the causal mask offset by the past length.

Where onnx.py emits the standard `Attention` op (opset 23 and 24, where onnxruntime runs
it: `fused`), that op takes the cache itself: `past_key`/`past_value` in, `present_key`/
`present_value` out, [B, heads, P, d_head], with the causal mask [T, P + T] as its
`attn_mask`. Elsewhere the attention is the plain MatMul/Softmax pattern (onnx.py's
`_pattern`, written out here on [B, heads, T, d_head] heads so that the cache keeps
onnxruntime-genai's layout, the Concat of past and new written out). Either way the
stream runs as its rows [B·T, D] as in onnx.py, whose packed Q/K/V projection,
feed-forward sublayer, residual layer norms and cross-attention over the memory these
rules reuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from onnx import helper

from . import attention_param_names
from .masks import input_roles
from .onnx import (
    Rows,
    Sublayer,
    _feed_forward,
    _residual,
    _split,
    as_rows,
    attention,
    back,
    fused,
    scores_term,
)

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


def cached_attention(e: Emit, x: Rows, prefix: str, mask: str, cache: KVCache, bias: bool) -> str:
    """Self-attention of the new tokens (their rows [B·T, D]) over the past and new keys,
    one cached layer: `present = Concat(past, new)` for the keys and values. Q, K and V
    are one Gemm and a Split, as onnx.py's `attention`; the result is rows [B·T, D]."""
    dim, heads = e.types[0].shape[-1], e.attr("heads")
    assert isinstance(dim, int), "shape inference guarantees a concrete model width"
    d_head = dim // heads
    names = attention_param_names(prefix)
    w = e.weight(names.in_proj_weight)
    b = [e.weight(names.in_proj_bias)] if bias else []
    qkv = e.op("Reshape", e.op("Gemm", x.rows, w, *b, transB=1), x.shape, tag="qkv")
    past_k, past_v, present_k, present_v = cache.add_layer(e, heads, d_head)
    scale = e.attr("scale")
    scale = 1 / math.sqrt(d_head) if scale is None else scale
    b_o = [e.weight(names.out_proj_bias)] if bias else []
    if fused(e):  # the standard Attention op takes the cache itself: past in, present out
        y = e.builder.fresh(f"{e.node.name}.__attention")
        e.builder.nodes.append(helper.make_node(
            "Attention", [*_split(e, qkv, 3, dim), mask, past_k, past_v],
            [y, present_k, present_v], name=y, q_num_heads=heads, kv_num_heads=heads,
            scale=float(scale)))  # fmt: skip
        merged = e.op("Reshape", y, e.ints([-1, dim], "rows_shape"), tag="merged_rows")
        return e.op("Gemm", merged, e.weight(names.out_proj_weight), *b_o, transB=1)
    q, k_new, v_new = (_heads(e, t, heads, d_head) for t in _split(e, qkv, 3, dim))
    for past, new, present in ((past_k, k_new, present_k), (past_v, v_new, present_v)):
        e.builder.node("Concat", [past, new], present, e.builder.fresh(f"{present}.__concat"),
                       axis=2)  # fmt: skip
    scores = e.op("MatMul", q, e.op("Transpose", present_k, perm=[0, 1, 3, 2], tag="k_t"))
    if scale != 1:
        scores = e.op("Mul", scores, e.const(scale, "scale"))
    probs = e.op("Softmax", e.op("Add", scores, mask, tag="masked"), axis=-1)
    y = e.op("Transpose", e.op("MatMul", probs, present_v), perm=[0, 2, 1, 3])
    merged = e.op("Reshape", y, e.ints([-1, dim], "rows_shape"), tag="merged_rows")
    return e.op("Gemm", merged, e.weight(names.out_proj_weight), *b_o, transB=1)


def _self_attention(e: Emit, cache: KVCache) -> str:
    _check(e)
    mask = causal_mask(e, e.x, cache)
    x = as_rows(e, e.x)
    return back(e, cached_attention(e, x, "", mask, cache, e.attr("bias")), x.shape)


def _stack(e: Emit, cache: KVCache, cross: Callable[[str, str, str], str] | None) -> str:
    """onnx.py's `_layers` with each layer's self-attention cached, on the stream's rows;
    `cross(h, prefix, shape)`, the decoder's, reads the memory as onnx.py does."""
    _check(e)
    mask = causal_mask(e, e.x, cache)
    stream = as_rows(e, e.x)
    x = stream.rows
    for i in range(e.attr("layers")):
        p = f"layers.{i}."

        def attend(h: str, p: str = p) -> str:
            return cached_attention(e, Rows(h, stream.shape), f"{p}self_attn.", mask, cache, True)

        def read_memory(h: str, p: str = p) -> str:
            assert cross is not None
            return cross(h, p, stream.shape)

        steps: list[tuple[Sublayer, str]] = [(attend, f"{p}norm1")]
        if cross is not None:
            steps.append((read_memory, f"{p}norm2"))
        steps.append((_feed_forward(e, p), f"{p}norm{len(steps) + 1}"))
        for f, norm in steps:
            x = _residual(e, x, f, norm)
    return back(e, x, stream.shape)


def _encoder(e: Emit, cache: KVCache) -> str:
    return _stack(e, cache, None)


def _decoder(e: Emit, cache: KVCache) -> str:
    """The decoder's cross-attention reads the memory (the encoder's output, recomputed
    at every step) as onnx.py's `_decoder` does."""
    roles = input_roles(e.node)
    memory = as_rows(e, e.inputs[roles["memory"]])
    memory_mask = e.inputs[roles["memory_mask"]] if "memory_mask" in roles else None
    cross_term = scores_term(e, e.x, memory_mask, None, False)

    def cross(h: str, p: str, shape: str) -> str:
        return attention(e, Rows(h, shape), memory, f"{p}multihead_attn.", cross_term, True)

    return _stack(e, cache, cross)


CACHE_RULES = {
    "self_attention": _self_attention,
    "transformer_encoder": _encoder,
    "transformer_decoder_layers": _decoder,
}
