"""The torch modules and functions of attention and transformers.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.

The modules compute what torch.nn.MultiheadAttention, TransformerEncoderLayer and
TransformerDecoderLayer (batch_first=True) compute, with the same parameter names, but
always on one path (no eval-mode fast path), which is the one the ONNX lowering follows.

A key padding mask [B, S] (1 / true attends, 0 / false is padding, Hugging Face's
reading) and an additive bias become one additive term of the scores: the bias (or 0)
where a key is kept, the dtype's most negative finite value where it is padding (not
-inf, so a row of padding only attends evenly rather than giving NaN), plus -inf above
the diagonal if causal. The modules called from the graph take their tensors after x in
the order `inputs` names them (the IR node's inputs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    """Multi-head attention: per head softmax(Q Kᵀ · scale + term) V (scale None: 1/√d_k),
    the heads concatenated and projected by out_proj; Q from x, K and V from `memory` (x
    itself if none); the term from a key padding mask and a bias (module docstring). Q, K
    and V's projections are stacked in in_proj_weight [3D, D], as in nn.MultiheadAttention.
    forward(x, *tensors) reads its tensors after x as `inputs` names them (default: a
    memory, so that Attention(...)(x, memory) is cross-attention)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        scale: float | None = None,
        inputs: tuple[str, ...] = ("memory",),
    ) -> None:
        super().__init__()
        self.heads, self.causal, self.dropout, self.scale = heads, causal, dropout, scale
        self.inputs = inputs  # what forward's tensors after x are: memory, mask, attn_bias
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return self.attend(x, **dict(zip(self.inputs, tensors, strict=False)))

    def attend(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of x to memory (to x if None), `mask` [B, S] and `attn_bias` (any
        shape that broadcasts to the scores [B, heads, T, S]) as the module docstring says."""
        if memory is None:
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            dim, b = x.shape[-1], self.in_proj_bias
            q = F.linear(x, self.in_proj_weight[:dim], None if b is None else b[:dim])
            kv_bias = None if b is None else b[dim:]
            k, v = F.linear(memory, self.in_proj_weight[dim:], kv_bias).chunk(2, dim=-1)
        p = self.dropout if self.training else 0.0
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        term = self.scores_term(q, k, mask, attn_bias)
        causal = self.causal and term is None  # else the term holds the causal mask
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=term, dropout_p=p, is_causal=causal, scale=self.scale
        )
        return self.out_proj(y.transpose(1, 2).flatten(2))

    def scores_term(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        mask: torch.Tensor | None,
        attn_bias: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """The additive term of the scores (None: nothing but the causal mask, which SDPA's
        is_causal applies): the bias or 0 where a key is kept, the most negative float
        where it is padding, -inf above the diagonal if causal."""
        if mask is None and attn_bias is None:
            return None
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        term = zero if attn_bias is None else attn_bias.to(q.dtype)
        if mask is not None:
            keep = mask.bool()[:, None, None, :]  # [B, 1, 1, S]
            term = torch.where(keep, term, torch.finfo(q.dtype).min)
        if self.causal:
            t, s = q.shape[-2], k.shape[-2]
            future = torch.ones(t, s, dtype=torch.bool, device=q.device).triu(1)
            term = term + torch.where(future, float("-inf"), zero)
        return term


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
        scale: float | None = None,
    ) -> None:
        super().__init__(dim, ff, dropout, activation, norm_first)
        self.self_attn = Attention(dim, heads, causal, dropout, scale=scale)
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        def attend(h: torch.Tensor) -> torch.Tensor:
            return self.self_attn.attend(h, mask=mask, attn_bias=attn_bias)

        x = self.residual(x, attend, self.norm1, self.dropout1)
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
        scale: float | None = None,
    ) -> None:
        super().__init__(dim, ff, dropout, activation, norm_first)
        self.self_attn = Attention(dim, heads, causal, dropout, scale=scale)
        self.multihead_attn = Attention(dim, heads, False, dropout, scale=scale)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim, eps=eps) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        def attend(h: torch.Tensor) -> torch.Tensor:
            return self.self_attn.attend(h, mask=mask, attn_bias=attn_bias)

        def cross(h: torch.Tensor) -> torch.Tensor:
            return self.multihead_attn.attend(h, memory, mask=memory_mask)

        x = self.residual(x, attend, self.norm1, self.dropout1)
        x = self.residual(x, cross, self.norm2, self.dropout2)
        return self.residual(x, self.feed_forward, self.norm3, self.dropout3)


class _Stack(nn.Module):
    """`layers` copies of the class's `layer` in sequence, each given the same memory,
    masks and bias (the tensors after x, named by `inputs`; default: the class's);
    `causal` None keeps the layer's own default."""

    layer: type[nn.Module]
    default_inputs: tuple[str, ...] = ()

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
        scale: float | None = None,
        inputs: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        options = (dim, heads, ff, dropout, activation, norm_first)
        kwargs: dict = {"eps": eps, "scale": scale}
        if causal is not None:
            kwargs["causal"] = causal
        self.layers = nn.ModuleList(self.layer(*options, **kwargs) for _ in range(layers))
        self.inputs = self.default_inputs if inputs is None else inputs

    def forward(self, x: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.inputs, tensors, strict=False))
        for layer in self.layers:
            x = layer(x, **named)
        return x


class TransformerEncoder(_Stack):
    """`layers` EncoderLayers in sequence (nn.TransformerEncoder without a final norm)."""

    layer = EncoderLayer


class TransformerDecoder(_Stack):
    """`layers` DecoderLayers in sequence, each attending to the same memory."""

    layer = DecoderLayer
    default_inputs = ("memory",)
