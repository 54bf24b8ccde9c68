"""The layer library, attention and transformers: self_attention, cross_attention,
transformer_encoder, transformer_decoder.

All act on sequences [B, T, D] and return [B, T, D]. Attention is the course's scaled
dot-product attention, per head: softmax(Q Kᵀ / √d_k) V with d_k = D / heads, the heads
concatenated and projected by W_O; `causal` masks the future (position t attends to
positions ≤ t). The parameters are those of `torch.nn.MultiheadAttention(D, heads,
batch_first=True)` under its state_dict names (Q, K and V packed in `in_proj_weight`
[3D, D]); the transformer stacks have exactly the parameters of `layers`
`torch.nn.TransformerEncoderLayer`s / `TransformerDecoderLayer`s (`layers.0.linear1.weight`).

The stacks' feed-forward activation is relu, gelu (exact) or gelu_tanh (GPT-2's tanh
approximation); `eps` is their layer norms' epsilon (torch's layer_norm_eps, default 1e-5;
BERT uses 1e-12).

`cross_attention` and `transformer_decoder` read a second tensor, `memory` (a node or
input [B, S, D]), so they are combinators: elaboration binds `memory` to its IR value
and expands the call into one internal op whose inputs are (x, memory).

Every attention op also takes, optionally, a key padding mask `mask=` ([B, S], 1 / true
attends, 0 / false is padding, as Hugging Face's attention_mask; the decoder's
`memory_mask=` is the memory's), an additive `attn_bias=` (broadcast to the scores
[B, heads, T, S]) and `scale=` (the scores' factor, default 1/√d_k; T5 uses 1). These
tensors are arguments of kind "input": they join the node's inputs after x and the
memory (masks.py says which is which and checks them).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...dims import Dim, dims_equal
from ...errors import Loc
from ...ir import InitSpec, ParamSpec, TensorType
from ...scope import Scope
from ..common import GLOROT_UNIFORM, ONES, ZEROS, numel
from ..linear import features
from ..registry import (
    BOOL,
    INPUT,
    NONE,
    POS_INT,
    POS_NUMBER,
    PROB,
    TENSOR,
    Arg,
    OpCtx,
    OpDef,
    choice,
    one_of,
    register,
)
from .examples import ERRORS, EXAMPLES
from .masks import (
    OPTIONAL_INPUTS,
    WITH_MEMORY,
    called,
    check_extras,
    check_queries,
    input_roles,
)

MAX_LAYERS = 1000  # layers of one stack; a bound on what one line of a spec can make
HEADS = Arg("heads", POS_INT, doc="attention heads; each sees d_k = D / heads features")
DROPOUT0 = Arg("dropout", PROB, 0.0, "dropout on the attention weights (training only)")
MEMORY = Arg("memory", TENSOR, doc="the node (or input) [B, S, D] keys and values come from")
LAYER_ARGS = (
    Arg("layers", POS_INT, doc="how many layers are stacked"),
    HEADS,
    Arg("ff", POS_INT, doc="hidden width of the feed-forward sublayer (dim_feedforward)"),
    Arg("dropout", PROB, 0.1, "dropout after each sublayer and on the attention weights"),
    Arg(
        "activation",
        choice("relu", "gelu", "gelu_tanh"),
        "relu",
        "of the feed-forward sublayer; gelu_tanh is GPT-2's tanh approximation",
    ),
    Arg("norm_first", BOOL, False, "pre-LN (x + f(LN(x))) instead of post-LN (LN(x + f(x)))"),
)
# Last, after `causal`, so that no argument already written positionally moves.
EPS = Arg("eps", POS_NUMBER, 1e-5, "of every layer norm (torch's layer_norm_eps; BERT: 1e-12)")
MASK = Arg("mask", INPUT, None, "key padding mask [B, S]: 1 / true attends, 0 / false is padding")
MEMORY_MASK = Arg("memory_mask", INPUT, None, "the memory's key padding mask [B, S]")
ATTN_BIAS = Arg("attn_bias", INPUT, None, "added to the scores [B, heads, T, S] (broadcast)")
SCALE = Arg(
    "scale",
    one_of(POS_NUMBER, NONE),
    None,
    "the scores' factor (torch's SDPA scale=): none is 1/√d_k; 1 is T5's unscaled attention",
)
# The internal ops record which tensors they were given (their inputs, in this order).
GIVEN_MASK = Arg("mask", BOOL, False, "a key padding mask is an input")
GIVEN_MEMORY_MASK = Arg("memory_mask", BOOL, False, "the memory's key padding mask is an input")
GIVEN_ATTN_BIAS = Arg("attn_bias", BOOL, False, "an additive bias of the scores is an input")


# -- shapes ---------------------------------------------------------------------------


def _called(ctx: OpCtx) -> str:
    return called(ctx.node)


def model_dim(ctx: OpCtx) -> int:
    """D of the sequence input [B, T, D], checked to split into `heads` heads."""
    if ctx.x.rank != 3:
        raise ctx.fail(
            f"{_called(ctx)} needs a sequence [B, T, D], got {ctx.x}",
            "token ids go through embedding(vocab, dim) first; images through patch_embed",
        )
    dim, heads = features(ctx), ctx["heads"]
    if dim % heads:
        raise ctx.fail(
            f"{_called(ctx)} splits D = {dim} into {heads} heads, but {dim} is not a multiple "
            f"of {heads}",
            f"choose heads dividing {dim} (each head gets d_k = D / heads features)",
        )
    return dim


def _memory(ctx: OpCtx) -> TensorType:
    """The memory input [B, S, D], checked against the queries' [B, T, D]."""
    x, memory = ctx.x, ctx.inputs[input_roles(ctx.node)["memory"]]
    batch_ok = memory.rank == 3 and dims_equal(memory.shape[0], x.shape[0])
    if not batch_ok or memory.shape[2] != x.shape[2]:
        raise ctx.fail(
            f"{_called(ctx)} attends from {x} to a memory {memory}; the memory must be "
            f"[{x.shape[0]}, S, {x.shape[2]}]",
            "keys and values come from the memory with the queries' width D: project it "
            f"with dense({x.shape[2]}) if its width differs",
        )
    return memory


def _self_shape(ctx: OpCtx) -> TensorType:
    check_queries(ctx)
    model_dim(ctx)
    check_extras(ctx)
    return ctx.x


def _cross_shape(ctx: OpCtx) -> TensorType:
    check_queries(ctx)
    model_dim(ctx)
    _memory(ctx)
    check_extras(ctx)
    return ctx.x


def _stack_shape(ctx: OpCtx) -> TensorType:
    """A transformer stack's: its layers counted, then as attention's."""
    if ctx["layers"] > MAX_LAYERS:
        raise ctx.fail(
            f"{_called(ctx)} stacks {ctx['layers']} layers, more than {MAX_LAYERS}",
            "check the layer count (the first argument)",
        )
    return _cross_shape(ctx) if ctx.node.op in WITH_MEMORY else _self_shape(ctx)


# -- parameters -----------------------------------------------------------------------


class AttentionParams(NamedTuple):
    """The state_dict names of one attention's parameters (the ONNX lowering reads them)."""

    in_proj_weight: str
    in_proj_bias: str
    out_proj: str  # the prefix of out_proj's weight and bias

    @property
    def out_proj_weight(self) -> str:
        return f"{self.out_proj}weight"

    @property
    def out_proj_bias(self) -> str:
        return f"{self.out_proj}bias"


def attention_param_names(prefix: str = "") -> AttentionParams:
    """nn.MultiheadAttention's parameter names under `prefix` (`layers.0.self_attn.`)."""
    return AttentionParams(f"{prefix}in_proj_weight", f"{prefix}in_proj_bias", f"{prefix}out_proj.")


def _weight(ctx: OpCtx) -> InitSpec:
    """Weight matrices: the spec's default init, else Glorot (torch's for in_proj)."""
    return ctx.default_init or GLOROT_UNIFORM


def _linear(ctx: OpCtx, name: str, out: int, inp: int, bias: bool = True) -> tuple[ParamSpec, ...]:
    weight = ParamSpec(f"{name}weight", (out, inp), _weight(ctx))
    return (weight, ParamSpec(f"{name}bias", (out,), ZEROS)) if bias else (weight,)


def attention_params(
    ctx: OpCtx, dim: int, prefix: str = "", bias: bool = True
) -> tuple[ParamSpec, ...]:
    """nn.MultiheadAttention's: in_proj_weight [3D, D] (Q, K, V stacked), in_proj_bias,
    out_proj.weight, out_proj.bias."""
    names = attention_param_names(prefix)
    w = (ParamSpec(names.in_proj_weight, (3 * dim, dim), _weight(ctx)),)
    b = (ParamSpec(names.in_proj_bias, (3 * dim,), ZEROS),) if bias else ()
    return w + b + _linear(ctx, names.out_proj, dim, dim, bias)


def _norm(prefix: str, dim: int) -> tuple[ParamSpec, ...]:
    return (ParamSpec(f"{prefix}weight", (dim,), ONES), ParamSpec(f"{prefix}bias", (dim,), ZEROS))


def _layer_params(ctx: OpCtx, i: int, dim: int, decoder: bool) -> tuple[ParamSpec, ...]:
    """One nn.TransformerEncoderLayer's / DecoderLayer's parameters, in its order."""
    p = f"layers.{i}."
    out = attention_params(ctx, dim, f"{p}self_attn.")
    if decoder:
        out += attention_params(ctx, dim, f"{p}multihead_attn.")
    ff = ctx["ff"]
    out += _linear(ctx, f"{p}linear1.", ff, dim) + _linear(ctx, f"{p}linear2.", dim, ff)
    for k in range(1, 4 if decoder else 3):
        out += _norm(f"{p}norm{k}.", dim)
    return out


def _self_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return attention_params(ctx, model_dim(ctx), bias=ctx["bias"])


def _encoder_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    dim = model_dim(ctx)
    return tuple(p for i in range(ctx["layers"]) for p in _layer_params(ctx, i, dim, False))


def _decoder_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    dim = model_dim(ctx)
    return tuple(p for i in range(ctx["layers"]) for p in _layer_params(ctx, i, dim, True))


# -- FLOPs ----------------------------------------------------------------------------


def attention_flops(ctx: OpCtx, queries: TensorType, keys: TensorType) -> Dim:
    """Projections 2D² + D per token (Q and W_O on the B·T queries, K and V on the B·S
    keys), QKᵀ and AV 2·T·S·D each, scale + mask + softmax ~6 per score (B·heads·T·S)."""
    dim = features(ctx)
    batch, t = queries.shape[:2]
    s = keys.shape[1]
    projections = 2 * (2 * dim * dim + dim) * batch * (t + s)
    return projections + 4 * batch * t * s * dim + 6 * batch * ctx["heads"] * t * s


def _self_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return attention_flops(ctx, ctx.x, ctx.x)


def _memory_of(ctx: OpCtx) -> TensorType:
    return ctx.inputs[input_roles(ctx.node)["memory"]]


def _cross_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return attention_flops(ctx, ctx.x, _memory_of(ctx))


def _feed_forward_flops(ctx: OpCtx) -> Dim:
    """linear1, the activation, linear2; two layer norms (8 per element) and two adds."""
    dim, ff = features(ctx), ctx["ff"]
    tokens = ctx.x.shape[0] * ctx.x.shape[1]
    return tokens * ((2 * dim + 1) * ff + ff + (2 * ff + 1) * dim) + 18 * numel(ctx.x)


def _encoder_flops(ctx: OpCtx, out: TensorType) -> Dim:
    per_layer = attention_flops(ctx, ctx.x, ctx.x) + _feed_forward_flops(ctx)
    return ctx["layers"] * per_layer


def _decoder_flops(ctx: OpCtx, out: TensorType) -> Dim:
    memory = _memory_of(ctx)
    cross = attention_flops(ctx, ctx.x, memory) + 9 * numel(ctx.x)  # + norm3 and an add
    per_layer = attention_flops(ctx, ctx.x, ctx.x) + cross + _feed_forward_flops(ctx)
    return ctx["layers"] * per_layer


# -- the ops --------------------------------------------------------------------------

register(
    OpDef(
        "self_attention",
        examples=EXAMPLES.get("self_attention", ()),
        errors=ERRORS.get("self_attention", ()),
        args=(
            HEADS,
            Arg("causal", BOOL, False, "mask the future: position t sees positions <= t"),
            DROPOUT0,
            Arg("bias", BOOL, True, "biases of the Q, K, V and output projections"),
            MASK,
            ATTN_BIAS,
            SCALE,
        ),
        arity=(1, 3),
        int_inputs=True,  # the mask; masks.py checks each input's dtype
        shape=_self_shape,
        params=_self_params,
        flops=_self_flops,
        category="attention",
        doc="Multi-head scaled dot-product self-attention on [B, T, D] "
        "(torch.nn.MultiheadAttention(D, heads, batch_first=True)).",
    )
)

register(
    OpDef(
        "multihead_cross_attention",
        examples=EXAMPLES.get("multihead_cross_attention", ()),
        args=(HEADS, DROPOUT0, Arg("bias", BOOL, True), GIVEN_MASK, GIVEN_ATTN_BIAS, SCALE),
        arity=(2, 4),
        int_inputs=True,
        shape=_cross_shape,
        params=_self_params,
        flops=_cross_flops,
        category="attention",
        internal=True,
        doc="Attention from x [B, T, D] (queries) to memory [B, S, D] (keys, values).",
    )
)

register(
    OpDef(
        "transformer_encoder",
        examples=EXAMPLES.get("transformer_encoder", ()),
        errors=ERRORS.get("transformer_encoder", ()),
        args=LAYER_ARGS
        + (Arg("causal", BOOL, False, "mask the future in self-attention"), EPS)
        + (MASK, ATTN_BIAS, SCALE),
        arity=(1, 3),
        int_inputs=True,
        shape=_stack_shape,
        params=_encoder_params,
        flops=_encoder_flops,
        category="attention",
        doc="`layers` transformer encoder layers on [B, T, D]: self-attention and a "
        "feed-forward sublayer, each with a residual and a layer norm "
        "(torch.nn.TransformerEncoderLayer(D, heads, ff, batch_first=True) each).",
    )
)

register(
    OpDef(
        "transformer_decoder_layers",
        examples=EXAMPLES.get("transformer_decoder_layers", ()),
        args=LAYER_ARGS
        + (Arg("causal", BOOL, True), EPS, GIVEN_MASK, GIVEN_MEMORY_MASK, GIVEN_ATTN_BIAS, SCALE),
        arity=(2, 5),
        int_inputs=True,
        shape=_stack_shape,
        params=_decoder_params,
        flops=_decoder_flops,
        category="attention",
        internal=True,
        doc="`layers` transformer decoder layers on x [B, T, D] attending to memory [B, S, D].",
    )
)


# -- the combinators that read a memory -----------------------------------------------


def _with_memory(name: str, op: str, keys: tuple[str, ...]) -> Any:
    """The expand rule of combinator `name`: one `op` node of (x, memory) and the masks
    and bias given (masks.py's order), named like the call."""

    def expand(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
        if x is None:
            raise el.fail(
                f"{name} has no input here",
                loc,
                "start the pipeline with the queries: x -> ...(memory, ...)",
            )
        attrs = {k: args[k] for k in keys}
        extras = [k for k in OPTIONAL_INPUTS if k in args]
        attrs.update((k, args[k] is not None) for k in extras)
        inputs = (x, args["memory"], *(args[k] for k in extras if args[k] is not None))
        # The node takes the name elaboration opened for the call (`cross_attention`),
        # so weights read `cross_attention.in_proj_weight`, as for a plain op.
        return el.emit(op, inputs, attrs, loc, Scope(""), scope.prefix)

    return expand


register(
    OpDef(
        "cross_attention",
        examples=EXAMPLES.get("cross_attention", ()),
        errors=ERRORS.get("cross_attention", ()),
        args=(MEMORY, HEADS, DROPOUT0, Arg("bias", BOOL, True), MASK, ATTN_BIAS, SCALE),
        kind="combinator",
        expand=_with_memory(
            "cross_attention", "multihead_cross_attention", ("heads", "dropout", "bias", "scale")
        ),
        category="attention",
        doc="Multi-head attention with queries from the input [B, T, D] and keys and "
        "values from `memory` [B, S, D] (torch.nn.MultiheadAttention).",
    )
)

register(
    OpDef(
        "transformer_decoder",
        examples=EXAMPLES.get("transformer_decoder", ()),
        errors=ERRORS.get("transformer_decoder", ()),
        args=(MEMORY,)
        + LAYER_ARGS
        + (Arg("causal", BOOL, True, "mask the future in self-attn"), EPS)
        + (MASK, MEMORY_MASK, ATTN_BIAS, SCALE),
        kind="combinator",
        expand=_with_memory(
            "transformer_decoder",
            "transformer_decoder_layers",
            (
                "layers",
                "heads",
                "ff",
                "dropout",
                "activation",
                "norm_first",
                "causal",
                "eps",
                "scale",
            ),
        ),
        category="attention",
        doc="`layers` transformer decoder layers: causal self-attention, cross-attention "
        "to `memory` [B, S, D], a feed-forward sublayer "
        "(torch.nn.TransformerDecoderLayer(D, heads, ff, batch_first=True) each).",
    )
)
