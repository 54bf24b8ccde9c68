"""The metadata an exported ONNX model carries, so it explains itself wherever it runs.

`model_metadata(checked)` gives the `metadata_props` entries `dlc compile` writes and
`dlc train` extends with the final metrics; `read_metadata(props)` turns them back into
values for `dlc serve` (the model metadata endpoint's `parameters`) and `dlc predict`
(class names per row). Every value is a string in ONNX, JSON where it is structured:

    dlc.preprocessing  [{"op": "standardize", "node": ..., "method": "minmax",
                         "baked_in": true, "statistics": "fitted on the training data"}]
    dlc.outputs        {"logits": "logits", "probs": "probabilities"}  (what each output holds)
    dlc.class_names    ["0", "1", ...]  when the training data names its classes
    dlc.data           "builtin:digits"  the training data's source
    dlc.metrics        {"train": {...}, "val": {...}, "test": {...}}  (dlc train only)
    dlc.sampler        {"kind": "vae", ...}  how `dlc sample` draws from the model
                       (runtime/sample/: a VAE's latent and decoder outputs; a diffusion
                       model's schedule, names and data scaling: compiler/diffusion.py)

Nothing here imports torch; the class names of scikit-learn's bundled data sets are
read from scikit-learn itself, only when the spec trains on one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..compiler.pipeline import Checked
from .sample.vae import vae_sampler

PREFIX = "dlc."
PROBABILITIES = {"softmax": "probabilities", "sigmoid": "probabilities",
                 "log_softmax": "log_probabilities"}  # fmt: skip
LOGIT_LOSSES = {"cross_entropy": "logits", "bce": "logits", "binary_cross_entropy": "logits"}
# scikit-learn's bundled classification sets, whose loaders carry `target_names`
SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")
JSON_KEYS = ("preprocessing", "outputs", "class_names", "metrics", "sampler")


# what a standardize layer's statistics are, by where the weights came from
STATISTICS = {
    "trained": "fitted on the training data",
    "checkpoint": "from the given weights",
    "initial": "not fitted (identity): train the model to fit them",
}


def model_metadata(
    checked: Checked,
    *,
    weights_from: str = "initial",
    metrics: Mapping[str, Any] | None = None,
    class_names: list[str] | None = None,
) -> dict[str, str]:
    """The `dlc.*` entries a spec's ONNX model records; `metrics` are a run's final ones."""
    out: dict[str, str] = {}
    pre = preprocessing(checked, STATISTICS[weights_from])
    if pre:
        out["dlc.preprocessing"] = json.dumps(pre)
    semantics = output_semantics(checked)
    if semantics:
        out["dlc.outputs"] = json.dumps(semantics)
    source = data_source(checked)
    if source:
        out["dlc.data"] = source
    names = class_names if class_names is not None else builtin_class_names(source)
    if names and any(s in ("logits", "probabilities") for s in semantics.values()):
        out["dlc.class_names"] = json.dumps(names)
    if metrics is not None:
        out["dlc.metrics"] = json.dumps(metrics, default=float)
    sampler = vae_sampler(checked)
    if sampler is not None:
        out["dlc.sampler"] = json.dumps(sampler)
    plan = checked.training
    if plan is not None and plan.diffusion is not None:  # dlc train adds the data scaling
        out["dlc.sampler"] = json.dumps(plan.diffusion.sampler_metadata(None))
    return out


def preprocessing(checked: Checked, statistics: str) -> list[dict[str, Any]]:
    """The standardize layers: their method, baked into the graph (a served model takes
    raw inputs), and what their statistics are."""
    return [
        {
            "op": n.op,
            "node": n.name,
            "method": n.attr("method"),
            "baked_in": True,
            "statistics": statistics,
        }  # fmt: skip
        for n in checked.graph.nodes
        if n.op == "standardize"
    ]


def output_semantics(checked: Checked) -> dict[str, str]:
    """What each output holds: `logits` when a logit loss (cross_entropy, bce) reads it,
    `probabilities` for an export output that is softmax or sigmoid of one."""
    out: dict[str, str] = {}
    plan = checked.training
    if plan is not None:
        for term in plan.losses:
            kind = LOGIT_LOSSES.get(term.call.name)
            if kind:
                out[term.output] = kind
    graph = checked.graph
    nodes = {n.name: n for n in graph.nodes}
    for name, value in checked.export_outputs:
        node = nodes.get(value)
        if node is not None and node.op in PROBABILITIES:
            out[name] = PROBABILITIES[node.op]
    return out


def data_source(checked: Checked) -> str | None:
    plan = checked.training
    return plan.options.data.train if plan is not None else None


def builtin_class_names(source: str | None) -> list[str] | None:
    """`target_names` of a scikit-learn bundled set named by `builtin:NAME`; else None."""
    if not source or not source.startswith("builtin:"):
        return None
    name = source.removeprefix("builtin:").partition("(")[0].strip()
    if name not in SKLEARN_SETS:
        return None
    try:
        from sklearn import datasets
    except ImportError:  # the names are a courtesy; the model is complete without them
        return None
    return [str(t) for t in getattr(datasets, f"load_{name}")().target_names]


def read_metadata(props: Mapping[str, str]) -> dict[str, Any]:
    """The `dlc.*` entries of a model's metadata_props, JSON values parsed, the prefix
    dropped; an entry that is not valid JSON stays a string."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if not key.startswith(PREFIX):
            continue
        short = key.removeprefix(PREFIX)
        if short in JSON_KEYS:
            try:
                out[short] = json.loads(value)
            except ValueError:
                out[short] = value
        else:
            out[short] = value
    return out


def labelled_outputs(meta: Mapping[str, Any], shapes: Mapping[str, Any]) -> list[str]:
    """The outputs whose last axis holds one score per known class name."""
    names = meta.get("class_names")
    semantics = meta.get("outputs")
    if not isinstance(names, list) or not isinstance(semantics, dict):
        return []
    return [
        out
        for out, kind in semantics.items()
        if kind in ("logits", "probabilities", "log_probabilities")
        and out in shapes
        and shapes[out]
        and shapes[out][-1] == len(names)
    ]
