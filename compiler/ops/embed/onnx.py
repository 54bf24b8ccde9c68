"""The ONNX rules of embeddings and sequence plumbing (see lower/onnx.py's `Emit`).
dense's tie= is lowered by dense's own rule (ops/linear/onnx.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...dims import Dim
from ...ir import TensorType

if TYPE_CHECKING:  # lower/onnx.py imports this module: no import back at run time
    from ...lower.onnx import Emit, Rule


def sinusoids(length: int, dim: int) -> np.ndarray:
    """The course's positions [length, dim] (modules.sinusoids in numpy):
    PE(t, 2i) = sin(t / 10000^(2i/D)), PE(t, 2i+1) = cos(t / 10000^(2i/D))."""
    j = np.arange(dim, dtype=np.float64)
    angle = np.arange(length, dtype=np.float64)[:, None] * 10000.0 ** (-(j - j % 2) / dim)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


def _embedding(e: Emit) -> str:
    """Row x of the table: Gather along its axis 0, as nn.Embedding does. The table is
    float32 (the op's output type), not the dtype of the ids."""
    table = e.builder.weight(e.node, "weight", np.dtype(np.float32))
    return e.op("Gather", table, e.x, axis=0, out=True)


def _rows(e: Emit, table: str, t: Dim) -> str:
    """table[:T] for the T of the input [B, T, D]; read off the input when symbolic."""
    zero = e.ints([0], "zero")
    if isinstance(t, int):
        return e.op("Slice", table, zero, e.ints([t], "length"), zero, tag="rows")
    length = e.op("Shape", e.x, start=1, end=2, tag="length")
    rows = e.op("Slice", table, zero, length, zero, tag="rows")
    e.declare(rows, TensorType(e.type.shape[1:], e.type.dtype))
    return rows


def _positions(e: Emit) -> str:
    """x + P[:T]: the sinusoids as a constant (just T rows when T is known), or the
    learned weight, Sliced to T. Dropout is the identity at inference."""
    _, t, d = e.type.shape
    assert isinstance(d, int), "shape inference guarantees a concrete feature axis"
    if e.attr("kind") == "sinusoidal" and isinstance(t, int):
        rows = e.const(sinusoids(t, d), "positions")
    elif e.attr("kind") == "sinusoidal":
        rows = _rows(e, e.const(sinusoids(e.attr("max_len"), d), "positions"), t)
    else:
        rows = _rows(e, e.weight("weight"), t)
    return e.op("Add", e.x, rows, out=True)


def timestep_rates(dim: int, max_period: float) -> np.ndarray:
    """modules.timestep_rates in numpy: P^(-(j - j % 2)/dim), float32."""
    j = np.arange(dim, dtype=np.float64)
    return (float(max_period) ** (-(j - j % 2) / dim)).astype(np.float32)


def _timestep(e: Emit) -> str:
    """Where(odd, Cos(a), Sin(a)) of the angles a = float(t) as [B, 1] times the rates
    [dim]: the same float32 steps as modules.TimestepEmbedding."""
    dim = e.attr("dim")
    t = e.x if e.types[0].dtype == "float32" else e.op("Cast", e.x, to=1, tag="float")
    column = e.op("Reshape", t, e.ints([-1, 1], "column"), tag="column")
    e.declare(column, TensorType((e.type.shape[0], 1), "float32"))
    rates = e.const(timestep_rates(dim, e.attr("max_period")), "rates", np.float32)
    angle = e.op("Mul", column, rates, tag="angle")
    odd = e.const(np.arange(dim) % 2 == 1, "odd", np.bool_)
    sin, cos = e.op("Sin", angle, tag="sin"), e.op("Cos", angle, tag="cos")
    return e.op("Where", odd, cos, sin, out=True)


def _patch_embed(e: Emit) -> str:
    """Conv with kernel = stride = patch, [B, dim, H/p, W/p] reshaped to [B, dim, N] and
    transposed to [B, N, dim]."""
    p, dim = e.attr("patch"), e.attr("dim")
    conv = e.op("Conv", e.x, e.weight("weight"), e.weight("bias"), kernel_shape=[p, p],
                strides=[p, p])  # fmt: skip
    flat = e.op("Reshape", conv, e.ints([0, dim, -1]), tag="flat")
    b, n, _ = e.type.shape
    if not isinstance(n, int):  # inference cannot name the patch count (H//p)*(W//p)
        e.declare(flat, TensorType((b, dim, n), e.type.dtype))
    return e.op("Transpose", flat, perm=[0, 2, 1], out=True)


def _cls_token(e: Emit) -> str:
    """Concat([token expanded to [B, 1, D], x], axis=1)."""
    b, _, d = e.type.shape
    assert isinstance(d, int), "shape inference guarantees a concrete feature axis"
    batch = e.op("Shape", e.x, start=0, end=1, tag="batch")
    shape = e.op("Concat", batch, e.ints([1, d], "token_shape"), axis=0, tag="shape")
    tokens = e.op("Expand", e.weight("token"), shape, tag="tokens")
    e.declare(tokens, TensorType((b, 1, d), e.type.dtype))
    return e.op("Concat", tokens, e.x, axis=1, out=True)


def _take(e: Emit) -> str:
    """Gather with a scalar index removes the axis; a negative index counts from the end."""
    index = np.asarray(e.attr("index"), np.int64)  # a scalar: a 1-D index would keep the axis
    name = e.builder.initializer(e.builder.fresh(f"{e.node.name}.__index"), index)
    return e.op("Gather", e.x, name, axis=e.attr("axis"), out=True)


ONNX_RULES: dict[str, Rule] = {
    "embedding": _embedding,
    "positional_encoding": _positions,
    "timestep_embedding": _timestep,
    "patch_embed": _patch_embed,
    "cls_token": _cls_token,
    "take": _take,
    "mean": lambda e: e.reduce("ReduceMean", e.x, [e.attr("axis")], keepdims=False, out=True),
}
