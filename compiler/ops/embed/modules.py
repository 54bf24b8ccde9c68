"""The torch modules and functions of embeddings and sequence plumbing.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn


def sinusoids(max_len: int, dim: int) -> torch.Tensor:
    """The course's positions [max_len, dim]: PE(t, 2i) = sin(t / 10000^(2i/D)) and
    PE(t, 2i+1) = cos(t / 10000^(2i/D)); computed in float64, returned in float32."""
    j = torch.arange(dim, dtype=torch.float64)
    rate = torch.pow(10000.0, -(j - j % 2) / dim)
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] * rate
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


class SinusoidalPositions(nn.Module):
    """x + PE[:T] on [B, T, D], then dropout. The table is a constant, not a weight: a
    buffer left out of the state_dict."""

    table: torch.Tensor

    def __init__(self, max_len: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("table", sinusoids(max_len, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.table[: x.shape[1]])


def timestep_rates(dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """The angular rate of each of `dim` features, P^(-(j - j % 2)/dim) (a pair of
    features, sin and cos, shares one rate), in float32."""
    j = torch.arange(dim, dtype=torch.float64)
    return torch.pow(float(max_period), -(j - j % 2) / dim).float()


class TimestepEmbedding(nn.Module):
    """t [B] or [B, 1] (ints or floats) to [B, dim]: sin(t·r_j) on the even features,
    cos(t·r_j) on the odd ones, r = timestep_rates: positional_encoding's table read at
    position t (any real t). The rates are a constant buffer, not a weight."""

    rates: torch.Tensor
    odd: torch.Tensor

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("rates", timestep_rates(dim, max_period), persistent=False)
        self.register_buffer("odd", torch.arange(dim) % 2 == 1, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.reshape(-1, 1).to(self.rates.dtype) * self.rates
        return torch.where(self.odd, torch.cos(angle), torch.sin(angle))


class LearnedPositions(nn.Module):
    """x + P[:T] on [B, T, D] with P a learned [max_len, D] weight, then dropout."""

    def __init__(self, max_len: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.weight[: x.shape[1]])


class PatchEmbed(nn.Conv2d):
    """Images [B, C, H, W] to patch embeddings [B, H·W/p², dim]: a p×p conv with stride p
    (its weight and bias are nn.Conv2d's), the patches in row-major order."""

    def __init__(self, channels: int, dim: int, patch: int) -> None:
        super().__init__(channels, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).flatten(2).transpose(1, 2)


class ClsToken(nn.Module):
    """Prepends a learned token [1, 1, D] to each sequence: [B, T, D] -> [B, T+1, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)

