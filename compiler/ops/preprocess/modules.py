"""The torch module of standardize, whose buffers are fitted on the training data.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn


class Standardize(nn.Module):
    """(x − shift) / scale, or (x − shift) Wᵀ for ZCA; fitted on the training data."""

    shift: torch.Tensor
    scale: torch.Tensor
    whiten: torch.Tensor

    def __init__(self, features: int, method: str = "zscore") -> None:
        super().__init__()
        self.method = method
        self.register_buffer("shift", torch.zeros(features))
        if method == "zca":
            self.register_buffer("whiten", torch.eye(features))
        else:
            self.register_buffer("scale", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "zca":
            return (x - self.shift) @ self.whiten.T
        return (x - self.shift) / self.scale
