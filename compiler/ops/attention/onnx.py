"""The ONNX rules of attention and transformers (see lower/onnx.py's `Emit`).

The tensors [B, T, D] flow as their rows [B·T, D] (`as_rows`: a Reshape, no copy), so that
every projection is one `Gemm(transB=1)` by an initializer in torch's [out, in] layout,
its bias inside, which onnxruntime runs faster than MatMul + Add on three axes (it fuses
those into Gemm only on two). Self-attention projects Q, K and V with one Gemm by the whole
`in_proj_weight` and Splits the result; cross-attention projects Q by its rows and K, V by
the other two thirds with one Gemm (Slices of the initializer, which onnxruntime folds;
initializers keep torch's names, so trained weights move by name). A transformer stack
turns its input into rows once, runs every layer on them (LayerNormalization, the residual
Adds, the feed-forward Gemms and Relu or GELU: `Gelu` from opset 20, else the erf or tanh
pattern onnxruntime fuses, activations/onnx.py's `gelu`) and Reshapes back to [B, T, D] at
the end. The layer norms' epsilon is the node's `eps`. Dropout is the identity at inference.

The heads' attention, on Q, K, V brought back to [B, T, D]: before opset 23 the plain-op
pattern: Reshape to [B, T, heads, d_k] and Transpose, MatMul for Q Kᵀ, Mul by 1/√d_k (or
`scale`; no Mul when it is 1), the additive term, Softmax, MatMul by V, the heads merged
back. The causal mask is an additive [T, T] constant (-inf above the diagonal, built with
Trilu at the run's T). A key padding mask and an additive bias join the scores as one
additive term, built once per node (masks.py): Where(mask, bias or 0, the float type's
most negative value), Unsqueezed to [B, 1, 1, S], plus the causal mask.

From opset 23 (`FUSED_OPSET`), where the installed onnxruntime has a kernel for that
opset's Attention (`runs_attention`: 1.32 has none from 25), the heads' attention is the
standard `Attention` op instead: Q, K and V [B, T, D], heads as attributes, `scale` always
given, a causal mask alone as `is_causal=1`, any other term as its float `attn_mask`
(Unsqueezed to 4-D and Expanded to T rows, as onnxruntime's kernel does not broadcast its
query axis). onnxruntime runs it as one kernel; it beats the pattern (which onnxruntime
1.32 does not fuse into attention on CPU), its 4-D form, `com.microsoft.Attention` and
`com.microsoft.MultiHeadAttention` on the transformer examples (tests/bench_onnx.py), so a
graph with attention defaults to that opset (`preferred_opset`).
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper

from ...ir import TensorType
from ..activations.onnx import gelu
from ..linear.onnx import linear
from ..norm.onnx import layernorm
from . import attention_param_names
from .masks import input_roles

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule

Sublayer = Callable[[str], str]
Layer = Callable[[str, "Scores", str], list[tuple[Sublayer, str]]]  # prefix, mask, shape
FUSED_OPSET = 23  # the standard Attention op


class Scores(NamedTuple):
    """What joins the scores: an additive term (broadcasting to [B, heads, T, S]) or None,
    and whether the causal mask is left to the fused op's `is_causal`."""

    term: str | None
    causal: bool = False


def fused(e: Emit) -> bool:
    return e.opset >= FUSED_OPSET and runs_attention(e.opset)


def preferred_opset() -> int | None:
    """The default opset of a graph with attention (lower/onnx.py's `default_opset`):
    FUSED_OPSET where the installed onnxruntime runs the fused op, faster than the pattern
    at every batch size measured (tests/bench_onnx.py); else no preference."""
    from ...lower.onnx import supported_opsets

    runs = FUSED_OPSET in supported_opsets() and runs_attention(FUSED_OPSET)
    return FUSED_OPSET if runs else None


@functools.cache
def runs_attention(opset: int) -> bool:
    """Whether the installed onnxruntime has a kernel for the Attention op of `opset`.
    Where it has none (1.32: from opset 25, Attention-25) it expands the op's function
    body, some 65 nodes, three times slower than the pattern; so the probe: a one-node
    model loaded once, its Attention kept or not. Without onnxruntime: 1.32's (23, 24)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return opset in (23, 24)
    from ...lower.onnx import ir_version_for

    qkv = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4]) for n in "qkv"]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], q_num_heads=1, kv_num_heads=1)
    graph = helper.make_graph([node], "probe", qkv, [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version_for(opset)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = os.path.join(tmp, "probe.onnx")
        try:
            ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception:  # noqa: BLE001 - any refusal means "not at this opset"
            return False
        kept = onnx.load(options.optimized_model_filepath).graph.node
    return [n.op_type for n in kept] == ["Attention"]


class Rows(NamedTuple):
    """A [B, T, D] tensor as the [B·T, D] matrix that Gemm takes (a Reshape, no copy), and
    [B, T, -1], the shape that brings a projection of it back to three axes."""

    rows: str
    shape: str


def as_rows(e: Emit, t: str) -> Rows:
    """`t` [B, T, D] as rows; B and T are read at run time, once per tensor."""
    dim = e.types[0].shape[-1]
    assert isinstance(dim, int), "shape inference guarantees a concrete model width"
    rows = e.op("Reshape", t, e.ints([-1, dim], "rows_shape"), tag="rows")
    bt = e.op("Shape", t, start=0, end=2, tag="bt")
    return Rows(rows, e.op("Concat", bt, e.ints([-1], "minus_one"), axis=0, tag="bt_"))


def _rows(e: Emit, w: str, i: int, n: int, dim: int, tag: str) -> str:
    """Rows i·D .. (i+n)·D of an in_proj initializer (Q: 0, K: 1, V: 2), the whole of it
    for all three (onnxruntime folds the Slice of an initializer)."""
    if i == 0 and n == 3:
        return w
    starts, ends = e.ints([i * dim], "start"), e.ints([(i + n) * dim], "end")
    return e.op("Slice", w, starts, ends, e.ints([0], "axes"), tag=tag)


def _split(e: Emit, t: str, n: int, dim: int) -> list[str]:
    """[B, T, n·D] -> n tensors [B, T, D] (one Split node: its n outputs)."""
    if n == 1:
        return [t]
    outs = [e.builder.fresh(f"{e.node.name}.__{tag}") for tag in "qkv"[3 - n :]]
    e.builder.nodes.append(helper.make_node(
        "Split", [t, e.ints([dim] * n, "split")], outs, name=outs[0], axis=-1))  # fmt: skip
    return outs


def _heads(e: Emit, t: str, heads: int, dim: int, perm: list[int]) -> str:
    """[B, T, D] -> [B, T, heads, d_k], transposed by `perm` ([B, heads, T, d_k] or, for
    the keys, [B, heads, d_k, T])."""
    split = e.op("Reshape", t, e.ints([0, 0, heads, dim // heads]), tag="split_heads")
    return e.op("Transpose", split, perm=perm)


def causal_mask(e: Emit, x: str) -> str:
    """[T, T] with -inf above the diagonal and 0 elsewhere, T read off x [B, T, D]."""
    t = e.op("Shape", x, start=1, end=2, tag="t")
    fill = helper.make_tensor("value", e.elem_type, [1], [-np.inf])
    full = e.op("ConstantOfShape", e.op("Concat", t, t, axis=0, tag="tt"), value=fill)
    k = e.const(1, "k", np.int64)
    mask = e.op("Trilu", full, k, upper=1, tag="causal_mask")
    steps = e.types[0].shape[1]
    e.declare(mask, TensorType((steps, steps), e.types[0].dtype))
    return mask


def _min(e: Emit) -> float:
    """The most negative finite value of the node's float type (float32's for bfloat16,
    which has the same range)."""
    try:
        return float(np.finfo(e.dtype).min)
    except ValueError:
        return float(np.finfo(np.float32).min)


def scores_term(e: Emit, queries: str, mask: str | None, bias: str | None, causal: bool) -> Scores:
    """What joins the scores: the causal mask alone as the fused op's `is_causal`, else
    the additive term (4-D for the fused op), built once per node (`_term`)."""
    if mask is None and bias is None and (not causal or fused(e)):
        return Scores(None, causal)
    term = _term(e, queries, mask, bias, causal)
    if fused(e):
        rank = 4 if mask is not None else 2 if bias is None else len(_type(e, bias).shape)
        if rank < 4:
            term = e.op("Unsqueeze", term, e.ints(list(range(4 - rank)), "axes"), tag="mask4d")
        # onnxruntime's kernel wants the mask's query axis spelled out: [.., T, S], not 1
        t = e.op("Shape", queries, start=1, end=2, tag="t")
        rows = e.op("Concat", e.ints([1, 1], "ones"), t, e.ints([1], "one"), axis=0, tag="rows")
        term = e.op("Expand", term, rows, tag="mask_rows")
    return Scores(term)


def _term(e: Emit, queries: str, mask: str | None, bias: str | None, causal: bool) -> str:
    """The additive term of the scores, broadcasting to [B, heads, T, S]: the bias (or 0)
    where the key padding mask [B, S] keeps a key, the most negative float where it pads,
    plus the causal mask (T read off `queries`)."""
    if mask is None and bias is None:
        return causal_mask(e, queries)
    term = bias if bias is not None else e.const(0.0, "zero")
    if mask is not None:
        keep = mask if _is_bool(e, mask) else e.op("Cast", mask, to=TensorProto.BOOL)
        keep = e.op("Unsqueeze", keep, e.ints([1, 2], "axes"), tag="keep")  # [B, 1, 1, S]
        # half the most negative float in the fused op: onnxruntime's kernel outputs 0 for
        # a row whose mask is the lowest float throughout, not the even attention of torch
        padding = _min(e) / 2 if fused(e) else _min(e)
        term = e.op("Where", keep, term, e.const(padding, "padding"), tag="key_mask")
    if causal:
        term = e.op("Add", term, causal_mask(e, queries), tag="causal_term")
    return term


def _type(e: Emit, value: str) -> TensorType:
    return e.types[e.inputs.index(value)]


def _is_bool(e: Emit, value: str) -> bool:
    return _type(e, value).dtype == "bool"


def _tensor(e: Emit, role: str) -> str | None:
    """The node's input that plays `role` (memory, mask, memory_mask, attn_bias), if any."""
    i = input_roles(e.node).get(role)
    return None if i is None else e.inputs[i]


def attention(e: Emit, x: Rows, memory: Rows | None, prefix: str, mask: Scores, bias: bool) -> str:
    """Multi-head attention of queries x [B·T, D] over memory [B·S, D] (None: x itself)
    with the weights `{prefix}in_proj_weight` etc.; `mask` what joins the scores
    (`scores_term`). The projections are Gemms on the rows by the initializers in torch's
    layout (transB), the bias inside: Q, K and V as one Gemm for self-attention, K and V
    as one for cross-attention, then Split. The result is [B·T, D]."""
    dim, heads = e.types[0].shape[-1], e.attr("heads")
    assert isinstance(dim, int), "shape inference guarantees a concrete model width"
    names = attention_param_names(prefix)
    w = e.weight(names.in_proj_weight)
    b = e.weight(names.in_proj_bias) if bias else None

    def project(src: Rows, i: int, n: int, tag: str) -> list[str]:
        b_i = [_rows(e, b, i, n, dim, f"b_{tag}")] if b is not None else []
        y = e.op("Gemm", src.rows, _rows(e, w, i, n, dim, f"w_{tag}"), *b_i, transB=1)
        return _split(e, e.op("Reshape", y, src.shape, tag=tag), n, dim)

    if memory is None:
        q, k, v = project(x, 0, 3, "qkv")
    else:
        (q,), (k, v) = project(x, 0, 1, "q"), project(memory, 1, 2, "kv")
    scale = e.attr("scale")
    scale = 1 / math.sqrt(dim // heads) if scale is None else scale
    if fused(e):
        merged = _fused(e, q, k, v, mask, heads, scale)
    else:
        merged = _pattern(e, q, k, v, mask.term, heads, dim, scale)
    merged = e.op("Reshape", merged, e.ints([-1, dim], "rows_shape"), tag="merged_rows")
    b_o = [e.weight(names.out_proj_bias)] if bias else []
    return e.op("Gemm", merged, e.weight(names.out_proj_weight), *b_o, transB=1)


def back(e: Emit, rows: str, shape: str) -> str:
    """The node's result [B, T, D] from its rows [B·T, D], `shape` its [B, T, -1]."""
    y = e.op("Reshape", rows, shape, out=True)
    e.declare(y, e.type)  # a shape read at run time: inference cannot see the dims
    return y


def _fused(e: Emit, q: str, k: str, v: str, mask: Scores, heads: int, scale: float) -> str:
    """The standard Attention op on the projected [B, T, D] / [B, S, D]: [B, T, D]."""
    inputs = [q, k, v] + ([mask.term] if mask.term is not None else [])
    return e.op("Attention", *inputs, q_num_heads=heads, kv_num_heads=heads,
                scale=float(scale), is_causal=int(mask.causal))  # fmt: skip


def _pattern(
    e: Emit, q: str, k: str, v: str, mask: str | None, heads: int, dim: int, scale: float
) -> str:
    """Q Kᵀ, scaled and masked, Softmax, by V, in plain ops: [B, T, D]."""
    q_heads, k_t = _heads(e, q, heads, dim, [0, 2, 1, 3]), _heads(e, k, heads, dim, [0, 2, 3, 1])
    scores = e.op("MatMul", q_heads, k_t)
    if scale != 1:
        scores = e.op("Mul", scores, e.const(scale, "scale"))
    if mask is not None:
        scores = e.op("Add", scores, mask, tag="masked")
    probs = e.op("Softmax", scores, axis=-1)
    y = e.op("MatMul", probs, _heads(e, v, heads, dim, [0, 2, 1, 3]))
    y = e.op("Transpose", y, perm=[0, 2, 1, 3])
    return e.op("Reshape", y, e.ints([0, 0, dim]), tag="merge_heads")


def _self_attention(e: Emit) -> str:
    term = scores_term(e, e.x, _tensor(e, "mask"), _tensor(e, "attn_bias"), e.attr("causal"))
    x = as_rows(e, e.x)
    return back(e, attention(e, x, None, "", term, e.attr("bias")), x.shape)


def _cross_attention(e: Emit) -> str:
    term = scores_term(e, e.x, _tensor(e, "mask"), _tensor(e, "attn_bias"), False)
    memory = _tensor(e, "memory")
    assert memory is not None
    x = as_rows(e, e.x)
    return back(e, attention(e, x, as_rows(e, memory), "", term, e.attr("bias")), x.shape)


# -- transformer layers: on the rows [B·T, D] of the stream, back to [B, T, D] at the end


def _activation(e: Emit, h: str) -> str:
    activation = e.attr("activation")
    if activation == "relu":
        return e.op("Relu", h)
    # gelu is exact, as torch's F.gelu; gelu_tanh its approximate="tanh" (GPT-2's)
    return gelu(e, h, "tanh" if activation == "gelu_tanh" else "none", out=False)


def _feed_forward(e: Emit, prefix: str) -> Sublayer:
    """linear2(act(linear1(h))), two Gemms on the rows."""

    def f(h: str) -> str:
        w1, b1 = e.weight(f"{prefix}linear1.weight"), e.weight(f"{prefix}linear1.bias")
        w2, b2 = e.weight(f"{prefix}linear2.weight"), e.weight(f"{prefix}linear2.bias")
        hidden = _activation(e, linear(e, h, 2, w1, b1, False))
        return linear(e, hidden, 2, w2, b2, False)

    return f


def _residual(e: Emit, x: str, f: Sublayer, norm: str) -> str:
    """x + f(LN(x)) pre-LN, LN(x + f(x)) post-LN, with the layer norm `norm`, on rows.
    (onnxruntime fuses a residual Add into SkipLayerNormalization only on three axes, and
    in a pre-LN stack only the last one: the stream's rows measured as fast or faster.)"""
    w, b, eps = e.weight(f"{norm}.weight"), e.weight(f"{norm}.bias"), e.attr("eps")
    if e.attr("norm_first"):
        return e.op("Add", x, f(layernorm(e, x, w, b, eps, False)), tag="residual")
    return layernorm(e, e.op("Add", x, f(x), tag="residual"), w, b, eps, False)


def _layers(e: Emit, sublayers: Layer) -> str:
    """The stack, on the rows of the stream: for each layer i, its sublayers (function,
    norm name) in order; `mask` is the self-attention's additive term and `shape` the
    stream's [B, T, -1], each built once."""
    mask = scores_term(e, e.x, _tensor(e, "mask"), _tensor(e, "attn_bias"), e.attr("causal"))
    stream = as_rows(e, e.x)
    x = stream.rows
    for i in range(e.attr("layers")):
        for f, norm in sublayers(f"layers.{i}.", mask, stream.shape):
            x = _residual(e, x, f, norm)
    return back(e, x, stream.shape)


def _encoder(e: Emit) -> str:
    def sublayers(p: str, mask: Scores, shape: str) -> list[tuple[Sublayer, str]]:
        def attend(h: str) -> str:
            return attention(e, Rows(h, shape), None, f"{p}self_attn.", mask, True)

        return [(attend, f"{p}norm1"), (_feed_forward(e, p), f"{p}norm2")]

    return _layers(e, sublayers)


def _decoder(e: Emit) -> str:
    memory = _tensor(e, "memory")
    assert memory is not None
    memory_mask = _tensor(e, "memory_mask")
    cross_term = scores_term(e, e.x, memory_mask, None, False)
    memory_rows = as_rows(e, memory)

    def sublayers(p: str, mask: Scores, shape: str) -> list[tuple[Sublayer, str]]:
        def attend(h: str) -> str:
            return attention(e, Rows(h, shape), None, f"{p}self_attn.", mask, True)

        def cross(h: str) -> str:
            q = Rows(h, shape)
            return attention(e, q, memory_rows, f"{p}multihead_attn.", cross_term, True)

        steps = [(attend, f"{p}norm1"), (cross, f"{p}norm2")]
        return steps + [(_feed_forward(e, p), f"{p}norm3")]

    return _layers(e, sublayers)


ONNX_RULES: dict[str, Rule] = {
    "self_attention": _self_attention,
    "multihead_cross_attention": _cross_attention,
    "transformer_encoder": _encoder,
    "transformer_decoder_layers": _decoder,
}
