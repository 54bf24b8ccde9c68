"""The cached ONNX rule of positional_encoding (lower/onnx_cached.py's key-value cache
mode): the new tokens sit at positions P .. P+T, P the past length, so they read those
rows of the table, learned or sinusoidal (onnx.py's `_positions` reads rows 0 .. T)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .onnx import sinusoids

if TYPE_CHECKING:
    from ...lower.onnx import Emit
    from ...lower.onnx_cached import KVCache


def _positions(e: Emit, cache: KVCache) -> str:
    """x + P[past : past + T], the table Sliced at run time."""
    _, _, d = e.type.shape
    assert isinstance(d, int), "shape inference guarantees a concrete feature axis"
    if e.attr("kind") == "sinusoidal":
        table = e.const(sinusoids(e.attr("max_len"), d), "positions")
    else:
        table = e.weight("weight")
    past = cache.past_length(e)
    t = e.op("Shape", e.x, start=1, end=2, tag="length")
    end = e.op("Add", past, t, tag="end")
    # named `rows` as onnx.py's: runtime/generate reads the model's positions off it
    rows = e.op("Slice", table, past, end, e.ints([0], "axis"), tag="rows")
    return e.op("Add", e.x, rows, out=True)


CACHE_RULES = {"positional_encoding": _positions}
