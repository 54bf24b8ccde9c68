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
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...dims import Dim, dims_equal
from ...errors import Loc
from ...ir import InitSpec, ParamSpec, TensorType
from ...scope import Scope
from ..common import GLOROT_UNIFORM, ONES, ZEROS, numel
from ..linear import features
from ..registry import BOOL, POS_INT, POS_NUMBER, PROB, TENSOR, Arg, OpCtx, OpDef, choice, register
from .examples import ERRORS, EXAMPLES

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


# -- shapes ---------------------------------------------------------------------------

# the internal ops' names as a spec writes them, for messages
_CALLED = {"multihead_cross_attention": "cross_attention",
           "transformer_decoder_layers": "transformer_decoder"}  # fmt: skip


def _called(ctx: OpCtx) -> str:
    return _CALLED.get(ctx.node.op, ctx.node.op)


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
    x, memory = ctx.inputs
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
    model_dim(ctx)
    return ctx.x


def _cross_shape(ctx: OpCtx) -> TensorType:
    model_dim(ctx)
    _memory(ctx)
    return ctx.x


def _stack_shape(ctx: OpCtx) -> TensorType:
    """A transformer stack's: its layers counted, then as attention's."""
    if ctx["layers"] > MAX_LAYERS:
        raise ctx.fail(
            f"{_called(ctx)} stacks {ctx['layers']} layers, more than {MAX_LAYERS}",
            "check the layer count (the first argument)",
        )
    return _cross_shape(ctx) if len(ctx.inputs) == 2 else _self_shape(ctx)


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


def _cross_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return attention_flops(ctx, ctx.x, ctx.inputs[1])


def _feed_forward_flops(ctx: OpCtx) -> Dim:
    """linear1, the activation, linear2; two layer norms (8 per element) and two adds."""
    dim, ff = features(ctx), ctx["ff"]
    tokens = ctx.x.shape[0] * ctx.x.shape[1]
    return tokens * ((2 * dim + 1) * ff + ff + (2 * ff + 1) * dim) + 18 * numel(ctx.x)


def _encoder_flops(ctx: OpCtx, out: TensorType) -> Dim:
    per_layer = attention_flops(ctx, ctx.x, ctx.x) + _feed_forward_flops(ctx)
    return ctx["layers"] * per_layer


def _decoder_flops(ctx: OpCtx, out: TensorType) -> Dim:
    memory = ctx.inputs[1]
    cross = attention_flops(ctx, ctx.x, memory) + 9 * numel(ctx.x)  # + norm3 and an add
    per_layer = attention_flops(ctx, ctx.x, ctx.x) + cross + _feed_forward_flops(ctx)
    return ctx["layers"] * per_layer


# -- the ops --------------------------------------------------------------------------

register(
    OpDef(
        "self_attention",
        examples=EXAMPLES.get("self_attention", ()),
        args=(
            HEADS,
            Arg("causal", BOOL, False, "mask the future: position t sees positions <= t"),
            DROPOUT0,
            Arg("bias", BOOL, True, "biases of the Q, K, V and output projections"),
        ),
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
        args=(HEADS, DROPOUT0, Arg("bias", BOOL, True)),
        arity=2,
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
        args=LAYER_ARGS + (Arg("causal", BOOL, False, "mask the future in self-attention"), EPS),
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
        args=LAYER_ARGS + (Arg("causal", BOOL, True), EPS),
        arity=2,
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
    """The expand rule of combinator `name`: one `op` node of (x, memory), named like the
    call."""

    def expand(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
        if x is None:
            raise el.fail(
                f"{name} has no input here",
                loc,
                "start the pipeline with the queries: x -> ...(memory, ...)",
            )
        attrs = {k: args[k] for k in keys}
        # The node takes the name elaboration opened for the call (`cross_attention`),
        # so weights read `cross_attention.in_proj_weight`, as for a plain op.
        return el.emit(op, (x, args["memory"]), attrs, loc, Scope(""), scope.prefix)

    return expand


register(
    OpDef(
        "cross_attention",
        examples=EXAMPLES.get("cross_attention", ()),
        args=(MEMORY, HEADS, DROPOUT0, Arg("bias", BOOL, True)),
        kind="combinator",
        expand=_with_memory(
            "cross_attention", "multihead_cross_attention", ("heads", "dropout", "bias")
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
        + (Arg("causal", BOOL, True, "mask the future in self-attn"), EPS),
        kind="combinator",
        expand=_with_memory(
            "transformer_decoder",
            "transformer_decoder_layers",
            ("layers", "heads", "ff", "dropout", "activation", "norm_first", "causal", "eps"),
        ),
        category="attention",
        doc="`layers` transformer decoder layers: causal self-attention, cross-attention "
        "to `memory` [B, S, D], a feed-forward sublayer "
        "(torch.nn.TransformerDecoderLayer(D, heads, ff, batch_first=True) each).",
    )
)
