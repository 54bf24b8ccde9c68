"""The torch rules of embeddings and sequence plumbing (see lower/lowered.py).
dense's tie= is lowered by dense's own rule (ops/linear/torch.py)."""

from __future__ import annotations

import torch
from torch import nn

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule
from . import modules


def _last(t: TensorType) -> int:
    d = t.shape[-1]
    assert isinstance(d, int), "shape inference guarantees a concrete feature axis"
    return d


def _embedding(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"padding_idx": node.attr("padding_idx")}
    return Lowered(nn.Embedding, (node.attr("vocab"), node.attr("dim")), kwargs)


def _positions(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    cls = (
        modules.SinusoidalPositions
        if node.attr("kind") == "sinusoidal"
        else modules.LearnedPositions
    )
    return Lowered(cls, (node.attr("max_len"), _last(ins[0]), node.attr("dropout")))


def _patch_embed(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    channels = ins[0].shape[1]
    assert isinstance(channels, int), "shape inference guarantees a concrete channel count"
    return Lowered(modules.PatchEmbed, (channels, node.attr("dim"), node.attr("patch")))


TORCH_RULES: dict[str, Rule] = {
    "embedding": _embedding,
    "positional_encoding": _positions,
    "timestep_embedding": lambda node, ins: Lowered(
        modules.TimestepEmbedding, (node.attr("dim"), float(node.attr("max_period")))
    ),
    "patch_embed": _patch_embed,
    "cls_token": lambda node, ins: Lowered(modules.ClsToken, (_last(ins[0]),)),
    "take": lambda node, ins: Lowered(
        fn=torch.select, call_kwargs={"dim": node.attr("axis"), "index": node.attr("index")}
    ),
    "mean": lambda node, ins: Lowered(fn=torch.mean, call_kwargs={"dim": node.attr("axis")}),
}
