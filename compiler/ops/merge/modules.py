"""The torch functions of the merges of many inputs.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch


def cat(*xs: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.cat of the arguments (fx passes a node's inputs one by one)."""
    return torch.cat(xs, dim=dim)


def add(*xs: torch.Tensor) -> torch.Tensor:
    """The sum of two or more tensors (broadcasting)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def mul(*xs: torch.Tensor) -> torch.Tensor:
    """The product of two or more tensors (broadcasting)."""
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def rdiv(x: torch.Tensor, scalar: float) -> torch.Tensor:
    """scalar / x, a number divided by a tensor (torch.div takes the tensor first)."""
    return scalar / x
