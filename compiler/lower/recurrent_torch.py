"""The torch rules of recurrent nets (see torch.py: `Lowered`, `TORCH_RULES`)."""

from __future__ import annotations

from .torch import Rule

TORCH_RULES: dict[str, Rule] = {}
