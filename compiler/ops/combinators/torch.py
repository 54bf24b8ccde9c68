"""The torch rules of the ops the combinators expand to (the combinators themselves
never reach the IR)."""

from __future__ import annotations

import operator

from ...lower.lowered import Lowered, Rule, features
from ..merge import modules as merge_modules
from ..merge.torch import chain
from .modules import HighwayGate

TORCH_RULES: dict[str, Rule] = {
    "residual_add": chain(operator.add, merge_modules.add),
    "highway_gate": lambda node, ins: Lowered(HighwayGate, (features(ins),)),
}
