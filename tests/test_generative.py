"""Tests of the layer library's generative ops: their rows of the registry tables (test_registry
and test_parity run them) and the tests of their own."""

from __future__ import annotations

from collections.abc import Callable

import torch

# op -> [(layer text, input shape, expected output shape)], concrete and symbolic
SHAPES: dict[str, list[tuple[str, str, str]]] = {}

# (layer, input shape, the equivalent torch.nn module): same parameter names and shapes
TORCH_EQUIVALENTS: list[tuple[str, str, Callable[[], torch.nn.Module]]] = []
