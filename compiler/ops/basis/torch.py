"""The torch rules of the basis functions (the pieces of modules.py)."""

from __future__ import annotations

from ...lower.lowered import Lowered, Rule, attrs_fn, features
from . import modules

TORCH_RULES: dict[str, Rule] = {
    "rbf": lambda node, ins: Lowered(
        modules.RBF, (features(ins), node.attr("units")), {"learn_sigma": node.attr("learn_sigma")}
    ),
    "polynomial": attrs_fn(modules.polynomial, degree="degree"),
    "fourier": attrs_fn(modules.fourier, n="n"),
}
