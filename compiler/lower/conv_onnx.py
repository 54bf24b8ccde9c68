"""The ONNX rules of convolution and pooling (see onnx_ops.py and onnx.py's `Emit`)."""

from __future__ import annotations

from .onnx_ops import Rule

ONNX_RULES: dict[str, Rule] = {}
