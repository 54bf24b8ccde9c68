"""The torch rule of standardize (the module of modules.py)."""

from __future__ import annotations

from ...lower.lowered import Lowered, Rule, features
from .modules import Standardize

TORCH_RULES: dict[str, Rule] = {
    "standardize": lambda node, ins: Lowered(
        Standardize, (features(ins),), {"method": node.attr("method")}
    ),
}
