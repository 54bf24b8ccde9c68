"""The test cases of the attention ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

TWICE = "concat(identity, identity, axis=1)"  # a memory of S = 2T steps
SEQ = "[B, T, 8]"  # the error cases' input
# Token ids [B, T] that are their own key padding mask (id 0 pads, as padding_idx=0 does):
# the tests draw ids below the vocabulary, so with a vocabulary of 1 every key is padding
# and every row is fully masked.
IDS = "[B, T]"
INT = "int64"
EMB = "embedding(4, 8) -> "
ALL_PADDING = "embedding(1, 8) -> "
BIAS = "take(0, axis=0) -> dense(4)"  # a [T, S] = [4, 4] bias from the input [B, 4, 8]
BIAS4 = "dense(4) -> reshape([B, 1, 4, 4])"  # a [B, 1, T, S] one

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "self_attention": (
        Example(
            "self_attention(2)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.MultiheadAttention(8, 2, batch_first=True)",
        ),
        Example("self_attention(4, causal=true)", "[B, T, 16]", "[B, T, 16]"),
        Example(
            "self_attention(2, causal=true, bias=false, dropout=0.1)", "[2, 5, 8]", "[2, 5, 8]"
        ),
        Example(
            "self_attention(4, causal=true, bias=false)",
            "[B, T, 16]",
            "[B, T, 16]",
            torch="nn.MultiheadAttention(16, 4, bias=False, batch_first=True)",
            parity=False,
        ),
        Example(f"{EMB}self_attention(2, mask=x)", IDS, "[B, T, 8]", INT),
        Example(f"{EMB}self_attention(2, causal=true, mask=x)", IDS, "[B, T, 8]", INT),
        Example(f"{ALL_PADDING}self_attention(2, mask=x)", IDS, "[B, T, 8]", INT),
        Example(f"{ALL_PADDING}self_attention(2, causal=true, mask=x)", IDS, "[B, T, 8]", INT),
        Example(f"self_attention(2, attn_bias={BIAS})", "[B, 4, 8]", "[B, 4, 8]"),
        Example(f"self_attention(2, causal=true, attn_bias={BIAS4})", "[B, 4, 8]", "[B, 4, 8]"),
        Example("self_attention(2, scale=1)", SEQ, SEQ),
        Example(
            "self_attention(4, causal=true, bias=false, scale=0.5)", "[B, T, 16]", "[B, T, 16]"
        ),
    ),
    "multihead_cross_attention": (
        Example(f"cross_attention({TWICE}, 2)", "[B, T, 8]", "[B, T, 8]"),
        Example("cross_attention(dense(8) -> tanh, 4, bias=false)", "[3, 5, 8]", "[3, 5, 8]"),
        Example(
            "cross_attention(x, 2)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.MultiheadAttention(8, 2, batch_first=True)",
            parity=False,
        ),
        Example(f"{EMB}cross_attention(identity, 2, mask=x)", IDS, "[B, T, 8]", INT),
        Example(
            f"{EMB}cross_attention({TWICE}, 2, mask=concat(x, x, axis=1), scale=1)",
            IDS,
            "[B, T, 8]",
            INT,
        ),
        Example(f"{ALL_PADDING}cross_attention(identity, 2, mask=x)", IDS, "[B, T, 8]", INT),
        Example(f"cross_attention(identity, 2, attn_bias={BIAS4})", "[B, 4, 8]", "[B, 4, 8]"),
    ),
    "transformer_encoder": (
        Example(
            "transformer_encoder(2, 2, 16)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), "
            "2, enable_nested_tensor=False)",
        ),
        Example("transformer_encoder(2, 2, 16, activation=gelu)", "[B, T, 8]", "[B, T, 8]"),
        Example(
            "transformer_encoder(2, 4, 32, norm_first=true, causal=true)",
            "[B, T, 16]",
            "[B, T, 16]",
        ),
        Example(
            "transformer_encoder(1, 2, 16, activation=gelu, norm_first=true)",
            "[2, 6, 8]",
            "[2, 6, 8]",
        ),
        Example(
            "transformer_encoder(3, 4, 32, activation=gelu, norm_first=true)",
            "[B, T, 16]",
            "[B, T, 16]",
            torch="nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, "
            'activation="gelu", norm_first=True), 3, enable_nested_tensor=False)',
            parity=False,
        ),
        Example("transformer_encoder(2, 2, 16, activation=gelu_tanh)", "[B, T, 8]", "[B, T, 8]"),
        Example(
            "transformer_encoder(1, 2, 16, activation=gelu_tanh, norm_first=true, eps=1e-12)",
            "[2, 6, 8]",
            "[2, 6, 8]",
        ),
        Example("transformer_encoder(2, 2, 16, eps=0.001)", "[B, T, 8]", "[B, T, 8]"),
        Example(
            "transformer_encoder(1, 2, 16, eps=1e-12)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, "
            "layer_norm_eps=1e-12), 1, enable_nested_tensor=False)",
            parity=False,
        ),
        Example(f"{EMB}transformer_encoder(2, 2, 16, mask=x)", IDS, "[B, T, 8]", INT),
        Example(
            f"{EMB}transformer_encoder(1, 2, 16, norm_first=true, causal=true, mask=x)",
            IDS,
            "[B, T, 8]",
            INT,
        ),
        Example(f"{ALL_PADDING}transformer_encoder(1, 2, 16, mask=x)", IDS, "[B, T, 8]", INT),
        Example(
            f"transformer_encoder(2, 2, 16, attn_bias={BIAS}, scale=1)", "[B, 4, 8]", "[B, 4, 8]"
        ),
    ),
    "transformer_decoder_layers": (
        Example(
            f"transformer_decoder({TWICE}, 2, 2, 16)",
            "[B, T, 8]",
            "[B, T, 8]",
        ),
        Example(
            f"transformer_decoder({TWICE}, 1, 2, 16, activation=gelu, norm_first=true)",
            "[B, T, 8]",
            "[B, T, 8]",
        ),
        Example(
            "transformer_decoder(x, 2, 2, 16)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.TransformerDecoder("
            "nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2)",
            parity=False,
        ),
        Example(
            f"transformer_decoder({TWICE}, 2, 2, 16, activation=gelu_tanh, eps=0.001)",
            "[B, T, 8]",
            "[B, T, 8]",
        ),
        Example(
            f"transformer_decoder({TWICE}, 1, 2, 16, activation=gelu_tanh, norm_first=true)",
            "[2, 3, 8]",
            "[2, 3, 8]",
        ),
        Example(
            "transformer_decoder(x, 1, 2, 16, eps=1e-12)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.TransformerDecoder("
            "nn.TransformerDecoderLayer(8, 2, 16, batch_first=True, layer_norm_eps=1e-12), 1)",
            parity=False,
        ),
        Example(
            f"{EMB}transformer_decoder({TWICE}, 1, 2, 16, mask=x, memory_mask=concat(x, x, "
            "axis=1))",
            IDS,
            "[B, T, 8]",
            INT,
        ),
        Example(
            f"{ALL_PADDING}transformer_decoder(identity, 1, 2, 16, mask=x, memory_mask=x)",
            IDS,
            "[B, T, 8]",
            INT,
        ),
        Example(
            f"transformer_decoder(identity, 1, 2, 16, causal=false, attn_bias={BIAS4}, scale=1)",
            "[B, 4, 8]",
            "[B, 4, 8]",
        ),
    ),
    "cross_attention": (Example("cross_attention(x, heads=2)", "[B, T, 8]", "[B, T, 8]"),),
    "transformer_decoder": (Example("transformer_decoder(x, 1, 2, 16)", "[B, T, 8]", "[B, T, 8]"),),
}

IDS_IN = "{shape: [B, T], dtype: int64}"  # token ids as an error case's input

ERRORS: dict[str, tuple[Failure, ...]] = {
    "self_attention": (
        Failure(
            "self_attention(2, mask=take(0, axis=2))",
            "self_attention's mask 'take' is [B, T]; a padding mask is bool, int64 or int32",
            1,
            SEQ,
        ),
        Failure(
            f"{EMB}self_attention(2, mask=x -> reshape([B, 2, 3]))",
            "mask 'reshape' is int64[B, 2, 3]; a padding mask has one flag per key: [B, 6]",
            20,
            "{shape: [B, 6], dtype: int64}",
        ),
        Failure(
            f"{EMB}cls_token -> self_attention(2, mask=x)",
            "mask 'x' is int64[B, T], but the keys [B, T + 1, 8] need [B, T + 1]",
            33,
            IDS_IN,
        ),
        Failure(
            f"self_attention(2, attn_bias={BIAS.replace('4', '3')})",
            "attn_bias 'dense' is [4, 3], which does not broadcast to the scores "
            "[B, heads, T, S] = [B, 2, 4, 4]",
            1,
            "[B, 4, 8]",
        ),
        Failure(
            "self_attention(2, attn_bias=dense(4))",
            "needs a heads axis: -> reshape([B, 1, 4, 4])",
            1,
            "[B, 4, 8]",
        ),
        Failure(
            f"{EMB}self_attention(2, attn_bias=x)",
            "attn_bias 'x' is int64[B, T]; it is added to the scores, so it must be float32",
            20,
            IDS_IN,
        ),
        Failure(
            "self_attention(2, scale=0)", "argument 'scale': expected a number > 0 or none", 25, SEQ
        ),
        Failure(
            "self_attention(2, mask=3)", "expected a layer or a tensor here, got a number", 24, SEQ
        ),
    ),
    "cross_attention": (
        Failure(
            f"{EMB}cross_attention({TWICE}, 2, mask=x)",
            "cross_attention's mask 'x' is int64[B, T], but the keys [B, 2*T, 8] need [B, 2*T]",
            20,
            IDS_IN,
        ),
    ),
    "transformer_encoder": (
        Failure(
            f"{EMB}transformer_encoder(1, 2, 16, mask=x -> slice(1, none))",
            "transformer_encoder's mask 'slice' is int64[B, T - 1], but the keys [B, T, 8] need",
            20,
            IDS_IN,
        ),
        Failure(
            "transformer_encoder(2, 2, 16, eps=0)", "argument 'eps': expected a number > 0", 35, SEQ
        ),
        Failure(
            "transformer_encoder(2, 2, 16, activation=gelu_fast)",
            "expected one of relu, gelu, gelu_tanh, got string 'gelu_fast'",
            42,
            SEQ,
        ),
    ),
    "transformer_decoder": (
        Failure("transformer_decoder(x, 1, 2, 16, eps=-1)", "expected a number > 0", 38, SEQ),
        Failure(
            f"{EMB}transformer_decoder({TWICE}, 1, 2, 16, memory_mask=x)",
            "transformer_decoder's memory_mask 'x' is int64[B, T], but the keys [B, 2*T, 8] "
            "need [B, 2*T]",
            20,
            IDS_IN,
        ),
        Failure(
            f"{EMB}transformer_decoder(x, 1, 2, 16, mask=x)",
            "transformer_decoder attends from [B, T, 8] to a memory int64[B, T]",
            20,
            IDS_IN,
        ),
    ),
}
