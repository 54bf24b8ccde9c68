"""The torch modules and functions of attention and transformers.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.

The modules compute what torch.nn.MultiheadAttention, TransformerEncoderLayer and
TransformerDecoderLayer (batch_first=True) compute, with the same parameter names, but
always on one path (no eval-mode fast path), which is the one the ONNX lowering follows.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    """Multi-head attention: per head softmax(Q Kᵀ / √d_k) V, the heads concatenated and
    projected by out_proj; Q from x, K and V from `memory` (x itself if none). Q, K and
    V's projections are stacked in in_proj_weight [3D, D], as in nn.MultiheadAttention."""

    def __init__(
        self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        if memory is None:
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            dim, b = x.shape[-1], self.in_proj_bias
            q = F.linear(x, self.in_proj_weight[:dim], None if b is None else b[:dim])
            kv_bias = None if b is None else b[dim:]
            k, v = F.linear(memory, self.in_proj_weight[dim:], kv_bias).chunk(2, dim=-1)
        p = self.dropout if self.training else 0.0
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.out_proj(y.transpose(1, 2).flatten(2))


class _Sublayers(nn.Module):
    """What encoder and decoder layers share: the feed-forward sublayer
    linear2(dropout(act(linear1(x)))) and the residual around each sublayer f,
    x + dropout(f(LN(x))) pre-LN or LN(x + dropout(f(x))) post-LN. The activation is
    relu, gelu (exact) or gelu_tanh (F.gelu's approximate="tanh", GPT-2's)."""

    def __init__(
        self, dim: int, ff: int, dropout: float, activation: str, norm_first: bool
    ) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff, dim)
        self.activation = activation
        self.norm_first = norm_first

    def act(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return F.relu(h)
        return F.gelu(h, approximate="tanh" if self.activation == "gelu_tanh" else "none")

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.act(self.linear1(x))))

    def residual(self, x: torch.Tensor, f, norm: nn.Module, drop: nn.Module) -> torch.Tensor:
        if self.norm_first:
            return x + drop(f(norm(x)))
        return norm(x + drop(f(x)))


class EncoderLayer(_Sublayers):
    """nn.TransformerEncoderLayer(dim, heads, ff, dropout, activation, layer_norm_eps=eps,
    batch_first=True, norm_first) with self-attention masked to the past when `causal`."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        causal: bool = False,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(dim, ff, dropout, activation, norm_first)
        self.self_attn = Attention(dim, heads, causal, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.residual(x, self.self_attn, self.norm1, self.dropout1)
        return self.residual(x, self.feed_forward, self.norm2, self.dropout2)


class DecoderLayer(_Sublayers):
    """nn.TransformerDecoderLayer(dim, heads, ff, dropout, activation, layer_norm_eps=eps,
    batch_first=True, norm_first): self-attention (causal), attention to the memory,
    feed-forward."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        causal: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(dim, ff, dropout, activation, norm_first)
        self.self_attn = Attention(dim, heads, causal, dropout)
        self.multihead_attn = Attention(dim, heads, False, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=eps) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.residual(x, self.self_attn, self.norm1, self.dropout1)
        x = self.residual(x, lambda h: self.multihead_attn(h, memory), self.norm2, self.dropout2)
        return self.residual(x, self.feed_forward, self.norm3, self.dropout3)


class _Stack(nn.Module):
    """`layers` copies of the class's `layer` in sequence, each given the same memory (if
    any); `causal` None keeps the layer's own default."""

    layer: type[nn.Module]

    def __init__(
        self,
        dim: int,
        layers: int,
        heads: int,
        ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        causal: bool | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        options = (dim, heads, ff, dropout, activation, norm_first)
        kwargs: dict = {"eps": eps} if causal is None else {"causal": causal, "eps": eps}
        self.layers = nn.ModuleList(self.layer(*options, **kwargs) for _ in range(layers))

    def forward(self, x: torch.Tensor, *memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, *memory)
        return x


class TransformerEncoder(_Stack):
    """`layers` EncoderLayers in sequence (nn.TransformerEncoder without a final norm)."""

    layer = EncoderLayer


class TransformerDecoder(_Stack):
    """`layers` DecoderLayers in sequence, each attending to the same memory."""

    layer = DecoderLayer
