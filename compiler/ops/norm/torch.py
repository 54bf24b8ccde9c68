"""The torch rules of normalization and regularization: the torch.nn modules of the same
meaning (their state_dicts are the IR's params), and DropPath (modules.py)."""

from __future__ import annotations

from torch import nn

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule, channels, features
from .modules import DropPath

_BATCHNORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _batchnorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "momentum": node.attr("momentum"),
              "affine": node.attr("affine")}  # fmt: skip
    return Lowered(_BATCHNORM[ins[0].rank], (ins[0].shape[1],), kwargs)


def _layernorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "elementwise_affine": node.attr("affine")}
    return Lowered(nn.LayerNorm, (features(ins),), kwargs)


def _rmsnorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "elementwise_affine": node.attr("affine")}
    return Lowered(nn.RMSNorm, (features(ins),), kwargs)


def _groupnorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "affine": node.attr("affine")}
    return Lowered(nn.GroupNorm, (node.attr("groups"), channels(ins)), kwargs)


TORCH_RULES: dict[str, Rule] = {
    "dropout": lambda node, ins: Lowered(nn.Dropout, (node.attr("p"),)),
    "drop_path": lambda node, ins: Lowered(
        DropPath, (node.attr("p"),), {"mode": node.attr("mode")}
    ),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "rmsnorm": _rmsnorm,
    "groupnorm": _groupnorm,
}
