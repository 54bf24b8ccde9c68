"""A VAE's sampler: z ~ N(0, I) through the decoder cut out of the exported model.

A spec whose model draws `z: gaussian_sample(mu, logvar)` and has outputs that depend on
the data only through z (the reconstruction) is a VAE. `vae_sampler(checked)` finds that
z and those outputs, and export records them in the model's `dlc.sampler` metadata:

    {"kind": "vae", "latent": "z", "shape": [4], "outputs": ["recon"],
     "condition": null}

`sample_vae` cuts the decoder out of the ONNX model at the latent (onnx.utils' Extractor:
z becomes an input, the encoder is gone) and runs it on onnxruntime. A conditional VAE,
whose decoder also reads an integer input (the label), names it under "condition".
Outputs that read a float input other than through z (a skip from the encoder) make the
model no VAE to sample from, and get no sampler.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...compiler.ir import Graph
from ...compiler.pipeline import Checked


def _reads(graph: Graph, value: str, stop: str) -> set[str]:
    """The graph inputs `value` reads, not counting what it reads through `stop`."""
    nodes = {n.name: n for n in graph.nodes}
    inputs = {i.name for i in graph.inputs}
    seen: set[str] = set()
    found: set[str] = set()
    todo = [value]
    while todo:
        v = todo.pop()
        if v in seen or v == stop:
            continue
        seen.add(v)
        if v in inputs:
            found.add(v)
        elif v in nodes:
            todo.extend(nodes[v].inputs)
    return found


def vae_sampler(checked: Checked) -> dict[str, Any] | None:
    """The `dlc.sampler` entry of a VAE's model, or None when the model is none."""
    graph = checked.graph
    draws = [n for n in graph.nodes if n.op == "gaussian_sample"]
    if len(draws) != 1:
        return None
    z = draws[0]
    z_type = z.type
    if z_type is None:
        return None
    outs = [name for name, value in graph.outputs if z.name in graph.live((value,))]
    if not outs:
        return None
    values = dict(graph.outputs)
    types = {i.name: i.type for i in graph.inputs}
    others = set().union(*(_reads(graph, values[o], z.name) for o in outs))
    if any(types[i].dtype.startswith("float") for i in others) or len(others) > 1:
        return None
    return {
        "kind": "vae",
        "latent": z.name,
        "shape": [d if isinstance(d, int) else None for d in z_type.shape[1:]],
        "outputs": outs,
        "condition": next(iter(others), None),
    }


def decoder_session(model: Any, info: dict[str, Any]) -> Any:
    """An onnxruntime session of the decoder: the model from `info["latent"]` (and the
    condition) to `info["outputs"]`."""
    import onnxruntime as ort
    from onnx.shape_inference import infer_shapes
    from onnx.utils import Extractor

    inputs = [info["latent"]] + ([info["condition"]] if info.get("condition") else [])
    decoder = Extractor(infer_shapes(model)).extract_model(inputs, list(info["outputs"]))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        decoder.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def sample_vae(
    session: Any, info: dict[str, Any], n: int, seed: int, labels: np.ndarray | None = None
) -> np.ndarray:
    """`n` draws: z ~ N(0, I) (seeded) through the decoder; the first sampled output."""
    rng = np.random.default_rng(seed)
    shape = [d if isinstance(d, int) else 1 for d in info["shape"]]
    feeds = {info["latent"]: rng.standard_normal((n, *shape)).astype(np.float32)}
    if info.get("condition"):
        feeds[info["condition"]] = np.asarray(labels, dtype=np.int64)
    return np.asarray(session.run([info["outputs"][0]], feeds)[0])
