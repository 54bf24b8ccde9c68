"""The torch modules and functions of convolution and pooling.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch


def global_avgpool(x: torch.Tensor) -> torch.Tensor:
    """The mean over every axis after the channels: [B, C, ...] -> [B, C]."""
    return x.flatten(2).mean(-1)


def global_maxpool(x: torch.Tensor) -> torch.Tensor:
    """The maximum over every axis after the channels: [B, C, ...] -> [B, C]."""
    return x.flatten(2).amax(-1)
