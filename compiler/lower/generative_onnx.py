"""The ONNX rules of generative pieces and more normalization (see onnx_ops.py and
onnx.py's `Emit`).
"""

from __future__ import annotations

from .onnx_ops import Rule

ONNX_RULES: dict[str, Rule] = {}
