"""Rules about the input data: standardization missing, or z-scores that blow up.

What the front end knows about a data set without loading it is a table of the built-ins
(their task, classes, features, and whether their features are on a unit scale). Only
the z-score rule reads the numbers, and only for the data sets scikit-learn bundles
(a file read in milliseconds, imported lazily: `dlc check` never pays for it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..ir import Node
from .registry import Finding, LintContext, rule


@dataclass(frozen=True, slots=True)
class DataInfo:
    """What lint knows of a built-in training set."""

    name: str  # builtin:digits
    task: str  # classification | binary | regression | sequence
    classes: int | None = None
    features: int | None = None
    scaled: bool = True  # features already on about a unit scale
    sklearn: str | None = None  # load_<this> in sklearn.datasets


_BUILTINS = {
    "xor": DataInfo("builtin:xor", "binary", 2, 2),
    "moons": DataInfo("builtin:moons", "binary", 2, 2),
    "circles": DataInfo("builtin:circles", "binary", 2, 2),
    "spirals": DataInfo("builtin:spirals", "binary", 2, 2),
    "linreg": DataInfo("builtin:linreg", "regression", None, 1),
    "sine": DataInfo("builtin:sine", "regression"),
    "digits": DataInfo("builtin:digits", "classification", 10, 64, False, "digits"),
    "iris": DataInfo("builtin:iris", "classification", 3, 4, False, "iris"),
    "wine": DataInfo("builtin:wine", "classification", 3, 13, False, "wine"),
    "breast_cancer": DataInfo("builtin:breast_cancer", "binary", 2, 30, False, "breast_cancer"),
    "copy": DataInfo("builtin:copy", "sequence"),
    "reverse": DataInfo("builtin:reverse", "sequence"),
    "sort": DataInfo("builtin:sort", "sequence"),
}
_SOURCE = re.compile(r"builtin:\s*(\w+)\s*(?:\((.*)\))?\s*", re.DOTALL)
_CLASSES = re.compile(r"\bclasses\s*=\s*(\d+)")


def data_info(ctx: LintContext) -> DataInfo | None:
    """The built-in the spec trains on, or None (files, or no training data)."""
    source = ctx.plan.options.data.train if ctx.plan else None
    match = _SOURCE.fullmatch(source) if isinstance(source, str) else None
    info = _BUILTINS.get(match[1]) if match else None
    if info is None or match is None:
        return None
    if match[1] == "spirals" and (k := _CLASSES.search(match[2] or "")):
        classes = int(k[1])
        task = "binary" if classes == 2 else "classification"
        return DataInfo(info.name, task, classes, 2)
    return info


# Ops that move values around without mixing features: a standardize behind them still
# sees the input's own features.
LAYOUT = frozenset({"flatten", "reshape", "permute"})
NORMALIZERS = frozenset({"standardize", "batchnorm", "layernorm", "groupnorm"})


def _first_layers(ctx: LintContext, value: str) -> list[Node]:
    out: list[Node] = []
    for user in ctx.consumers(value):
        out.extend(_first_layers(ctx, user.name) if user.op in LAYOUT else [user])
    return out


@rule(
    "DLC111",
    "no-standardization",
    "float inputs that nothing standardizes",
    "Gradient descent converges fastest when every feature has mean 0 and a similar "
    "scale; raw features (pixels 0..16, a wine's proline in the thousands) make the loss "
    "surface a narrow valley and the first layer's init variance meaningless.",
)
def no_standardization(ctx: LintContext) -> Iterator[Finding]:
    if ctx.plan is None or ctx.plan.options.data.train is None:
        return  # nothing is trained here
    data = ctx.data
    if data is not None and data.scaled:
        return
    diffusion = ctx.plan.diffusion
    for inp in ctx.graph.inputs:
        if not inp.type.dtype.startswith(("float", "bfloat")):
            continue
        if diffusion is not None and inp.name in (diffusion.input, diffusion.time):
            if diffusion.scale != "none" or inp.name == diffusion.time:
                continue  # the objective scales x0 to [-1, 1]; t is a step, not a feature
        firsts = _first_layers(ctx, inp.name)
        if not firsts or all(n.op in NORMALIZERS for n in firsts):
            continue
        what = (f"{data.name}'s features are not on a unit scale" if data
                else "the data files are not known to be standardized")  # fmt: skip
        yield Finding(
            f"the float input '{inp.name}' reaches the network unstandardized, and {what}",
            inp.loc,
            "make standardize (or standardize(method=minmax)) the first layer: it is "
            "fitted on the training split and exported as constants; if the files are "
            "standardized already, silence this rule with `# dlc: ignore DLC111`",
        )


# A value this many (fitted) standard deviations from the mean is not a z-score a
# network has seen: it saturates or explodes the first layer.
MAX_Z = 10.0


def _load_sklearn(name: str) -> Any:
    """x of a scikit-learn bundled set, or None where scikit-learn is missing."""
    try:
        from sklearn import datasets
    except ImportError:  # pragma: no cover - an optional dependency of training
        return None
    return getattr(datasets, f"load_{name}")(return_X_y=True)[0]


def zscore_extremes(x: Any, eps: float) -> tuple[int, float]:
    """For features z-scored with their own mean and std (plus `eps`): how many have
    an example MAX_Z or more from the mean, and the largest such |z|. A constant feature
    keeps scale 1 (as `dlc train` fits it)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    mean, std = x.mean(0), x.std(0)
    scale = np.where(std > 0, std + eps, 1.0)
    z = np.abs(x - mean).max(0) / scale
    bad = z >= MAX_Z
    if not bad.any():
        return 0, 0.0
    return int(bad.sum()), float(z[bad].max())


@rule(
    "DLC112",
    "zscore-near-constant",
    "z-score standardization of near-constant features",
    "A feature that is almost always the same value (a digit's edge pixel) has a tiny "
    "std; z-scoring it turns the rare other value into 40σ, an input no layer was "
    "trained to expect, and splits the data disagree wildly on it.",
)
def zscore_near_constant(ctx: LintContext) -> Iterator[Finding]:
    data = ctx.data
    if data is None or data.sklearn is None:
        return
    for n in ctx.nodes:
        if n.op != "standardize" or n.attr("method") != "zscore":
            continue
        width = _width_of(n)
        if not _reads_raw_input(ctx, n) or not width or (data.features or 0) % width:
            continue
        x = _load_sklearn(data.sklearn)
        if x is None:
            return
        # Without a permute on the way, the standardized axis is the data's last one cut
        # into rows of `width` (the digits as 8 steps of 8 pixels: statistics per column).
        count, z = zscore_extremes(x.reshape(-1, width), float(n.attr("eps")))
        if count:
            what = (f"{count} of its {width} features" if width == data.features
                    else f"{count} of the {width} features standardized here")  # fmt: skip
            yield Finding(
                f"z-scoring {data.name}: {what} are nearly constant, and their rare "
                f"other values land {MAX_Z:g}σ to {z:.0f}σ from the mean; a split that holds "
                f"such values feeds the network inputs it never trained on",
                n.loc,
                "use standardize(method=minmax) (pixels land in [0, 1]), or a floor on the "
                "scale: standardize(eps=1)",
            )


def _width_of(n: Node) -> int | None:
    shape = n.type.shape if n.type else ()
    return shape[-1] if shape and isinstance(shape[-1], int) else None


def _reads_raw_input(ctx: LintContext, n: Node) -> bool:
    """`n` reads a graph input directly or through flatten/reshape only."""
    inputs = {i.name for i in ctx.graph.inputs}
    value = n.inputs[0] if n.inputs else None
    while value is not None and value not in inputs:
        producer = ctx.producer(value)
        if producer is None or producer.op not in ("flatten", "reshape"):
            return False
        value = producer.inputs[0] if producer.inputs else None
    return value is not None
