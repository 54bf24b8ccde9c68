"""The torch rules of the basis functions (the pieces of modules.py)."""

from __future__ import annotations

from ...lower.lowered import Lowered, Rule, attrs_fn, features
from . import modules as m

TORCH_RULES: dict[str, Rule] = {
    "rbf": lambda node, ins: Lowered(
        m.RBF, (features(ins), node.attr("units")), {"learn_sigma": node.attr("learn_sigma")}
    ),
    "polynomial": attrs_fn(m.polynomial, degree="degree"),
    "fourier": attrs_fn(m.fourier, n="n"),
}
