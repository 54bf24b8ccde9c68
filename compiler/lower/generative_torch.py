"""The torch rules of generative pieces and more normalization (see torch.py: `Lowered`,
`TORCH_RULES`).
"""

from __future__ import annotations

from torch import nn

from ..ir import Node, TensorType
from . import generative_modules as gm
from .torch import Lowered, Rule


def _groupnorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "affine": node.attr("affine")}
    return Lowered(nn.GroupNorm, (node.attr("groups"), ins[0].shape[1]), kwargs)


TORCH_RULES: dict[str, Rule] = {
    "groupnorm": _groupnorm,
    "drop_path": lambda node, ins: Lowered(
        gm.DropPath, (node.attr("p"),), {"mode": node.attr("mode")}
    ),
    "gaussian_sample": lambda node, ins: Lowered(
        gm.GaussianSample, (), {"sample": node.attr("sample")}
    ),
}
