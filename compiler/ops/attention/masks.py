"""What attention reads besides its queries: which of a node's inputs is the memory, a key
padding mask or an additive bias, and the shape rules of the masks and the bias.

A node of an attention op has its inputs in one order: x (the queries), the memory (the
ops that read one), then, each only where the spec gives it, `mask`, `memory_mask` and
`attn_bias`; the node's attribute of the same name says whether it was given.

- A key padding mask is [B, S], one flag per key, as Hugging Face's `attention_mask`:
  1 / true attends, 0 / false is padding. Its dtype is bool, int64 or int32 (nonzero
  attends). A float mask is refused: torch's float attn_mask is additive (0 / -inf),
  the opposite reading of a 0 / 1 mask, so a float belongs in `attn_bias`.
- `attn_bias` is added to the scaled scores before the softmax (ALiBi, T5's relative
  position bias, an additive float mask); its shape broadcasts to the scores
  [B, heads, T, S] as numpy broadcasts ([B, 1, T, S], [heads, T, S], [T, S]).

Both lowerings turn the mask into an additive term: the bias (or 0) where a key is kept
and the float type's most negative finite value where it is padding, as Hugging Face
does, not -inf: a row whose keys are all padding then attends evenly instead of giving
NaN, the same in torch and ONNX.
"""

from __future__ import annotations

from ...dims import Dim, dims_equal
from ...dtypes import FLOAT_DTYPES
from ...ir import Node, TensorType
from ..registry import OpCtx

MASK_DTYPES = ("bool", "int64", "int32")
OPTIONAL_INPUTS = ("mask", "memory_mask", "attn_bias")  # in the order a node takes them
# The internal ops of the combinators that read a memory, and the names a spec calls them
WITH_MEMORY = {"multihead_cross_attention": "cross_attention",
               "transformer_decoder_layers": "transformer_decoder"}  # fmt: skip
ATTENTION_OPS = ("self_attention", "transformer_encoder", *WITH_MEMORY)


def called(node: Node) -> str:
    """The op as the spec calls it, for messages."""
    return WITH_MEMORY.get(node.op, node.op)


def input_roles(node: Node) -> dict[str, int]:
    """The index in node.inputs of each tensor the node reads: x, memory, mask, ..."""
    roles = ["x"] + (["memory"] if node.op in WITH_MEMORY else [])
    roles += [k for k in OPTIONAL_INPUTS if node.attrs and dict(node.attrs).get(k)]
    return {r: i for i, r in enumerate(roles)}


def key_masks(node: Node) -> tuple[str, ...]:
    """The values a node reads as key padding masks (none for an op not of this family,
    or one without a mask): what `dlc compile --verify` draws as padding masks."""
    if node.op not in ATTENTION_OPS:
        return ()
    roles = input_roles(node)
    return tuple(node.inputs[roles[k]] for k in ("mask", "memory_mask") if k in roles)


def _keys(ctx: OpCtx, arg: str) -> TensorType:
    """The keys that `arg` (mask, memory_mask or attn_bias) masks or biases: the memory's
    for cross-attention and memory_mask, else the queries' own."""
    cross = ctx.node.op == "multihead_cross_attention" or arg == "memory_mask"
    return ctx.inputs[input_roles(ctx.node)["memory"]] if cross else ctx.x


def check_queries(ctx: OpCtx) -> None:
    """x must be floating point (attention's ops take integer masks, so the registry's
    check of every input is theirs to make)."""
    if ctx.x.dtype not in FLOAT_DTYPES:
        raise ctx.fail(
            f"{called(ctx.node)} needs a floating-point input, but '{ctx.node.inputs[0]}' is "
            f"{ctx.x.dtype}",
            "integer inputs are token ids: start with embedding(vocab, dim)",
        )


def check_extras(ctx: OpCtx) -> None:
    """The masks and the bias the node reads, checked against its queries and keys."""
    roles = input_roles(ctx.node)
    for arg in ("mask", "memory_mask"):
        if arg in roles:
            _check_mask(ctx, arg, roles[arg])
    if "attn_bias" in roles:
        _check_bias(ctx, roles["attn_bias"])


def _check_mask(ctx: OpCtx, arg: str, i: int) -> None:
    mask, name, keys = ctx.inputs[i], ctx.node.inputs[i], _keys(ctx, arg)
    op = called(ctx.node)
    want = f"[{keys.shape[0]}, {keys.shape[1]}]"
    if mask.dtype not in MASK_DTYPES:
        raise ctx.fail(
            f"{op}'s {arg} '{name}' is {mask}; a padding mask is bool, int64 or int32 "
            "(1 / true: attend, 0 / false: padding)",
            f"declare it as {{shape: {want}, dtype: int64}} (or bool); an additive float "
            "mask (0 / -inf) goes in attn_bias=",
        )
    if mask.rank != 2:
        raise ctx.fail(
            f"{op}'s {arg} '{name}' is {mask}; a padding mask has one flag per key: {want} "
            f"for the keys {keys}",
            "a [T, S] or [B, heads, T, S] mask is additive: pass it as attn_bias=",
        )
    if not (dims_equal(mask.shape[0], keys.shape[0]) and dims_equal(mask.shape[1], keys.shape[1])):
        hint = "one flag per key and example"
        if dims_equal(mask.shape[0], keys.shape[0]) and dims_equal(
            mask.shape[1] + 1, keys.shape[1]
        ):
            hint = (
                "the keys have one step more than the mask; if a cls_token prepended it, "
                "let the mask attend to it: mask=... -> pad([1, 0], value=1)"
            )
        raise ctx.fail(f"{op}'s {arg} '{name}' is {mask}, but the keys {keys} need {want}", hint)


def _check_bias(ctx: OpCtx, i: int) -> None:
    bias, name, keys, x = ctx.inputs[i], ctx.node.inputs[i], _keys(ctx, "attn_bias"), ctx.x
    op = called(ctx.node)
    scores: tuple[Dim, ...] = (x.shape[0], ctx["heads"], x.shape[1], keys.shape[1])
    shown = f"[{', '.join(map(str, scores))}]"
    if bias.dtype != x.dtype:
        raise ctx.fail(
            f"{op}'s attn_bias '{name}' is {bias}; it is added to the scores, so it must be "
            f"{x.dtype} like the input",
            "a 0 / 1 padding mask goes in mask=",
        )
    fits = 1 <= bias.rank <= 4 and all(
        dims_equal(d, 1) or dims_equal(d, s)
        for d, s in zip(reversed(bias.shape), reversed(scores), strict=False)
    )
    if not fits:
        hint = (
            "each of its last dims must equal the scores' or be 1: [B, 1, T, S], "
            "[heads, T, S] or [T, S]"
        )
        if bias.rank == 3 and dims_equal(bias.shape[0], x.shape[0]):
            b, t, s = bias.shape
            hint = f"a bias per example needs a heads axis: -> reshape([{b}, 1, {t}, {s}])"
        raise ctx.fail(
            f"{op}'s attn_bias '{name}' is {bias}, which does not broadcast to the scores "
            f"[B, heads, T, S] = {shown}",
            hint,
        )
