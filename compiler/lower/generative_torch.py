"""The torch rules of generative pieces and more normalization (see torch.py: `Lowered`,
`TORCH_RULES`).
"""

from __future__ import annotations

from .torch import Rule

TORCH_RULES: dict[str, Rule] = {}
