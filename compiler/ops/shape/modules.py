"""The torch function of the shape ops that torch has no one call for.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch


def slice_axis(x: torch.Tensor, start: int, stop: int | None, axis: int, step: int) -> torch.Tensor:
    """x[..., start:stop:step] on axis `axis` (>= 0), torch's indexing: a view."""
    return x[(slice(None),) * axis + (slice(start, stop, step),)]
