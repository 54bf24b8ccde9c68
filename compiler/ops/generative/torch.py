"""The torch rule of gaussian_sample (the module of modules.py)."""

from __future__ import annotations

from ...lower.lowered import Lowered, Rule
from .modules import GaussianSample

TORCH_RULES: dict[str, Rule] = {
    "gaussian_sample": lambda node, ins: Lowered(
        GaussianSample, (), {"sample": node.attr("sample")}
    ),
}
