"""Sampling a trained GAN's generator on onnxruntime: z ~ N(0, I) through generator.onnx.

generator.onnx (written by `dlc train` of a `training.gan` spec, runtime/train/gan.py)
says how in its metadata, `dlc.sampler`:

    {"kind": "gan", "noise": "z", "noise_shape": [32], "condition": "y" | null,
     "classes": 10 | null, "output": "x", ...}

`sample_gan` draws the noise from numpy's seeded generator (the same seed gives the same
samples on any machine) and returns the generator's output, in the data's own units (a
digits generator ends in sigmoid * 16), so a classifier trained on the raw data can judge
them. A conditional generator takes `labels`, or, without them, the classes in turn
(0, 1, ..., classes - 1, 0, ...), so n samples cover every class evenly.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ...compiler.errors import UsageError


def gan_sampler(session: Any) -> dict[str, Any]:
    """generator.onnx's `dlc.sampler` entry, checked to be a GAN's."""
    props = session.get_modelmeta().custom_metadata_map
    raw = props.get("dlc.sampler")
    info = json.loads(raw) if raw else None
    if not isinstance(info, dict) or info.get("kind") != "gan":
        raise UsageError(
            "this model is not a GAN's generator: its metadata has no dlc.sampler of kind gan",
            hint="sample the generator.onnx of a `dlc train` run of a training.gan spec",
        )
    return info


def sample_gan(session: Any, n: int, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
    """`n` samples of the generator in `session` (an onnxruntime InferenceSession of a
    trained generator.onnx), from z ~ N(0, I) drawn with `seed`; `labels` (n ints in
    [0, classes)) for a conditional GAN."""
    if n < 1:
        raise UsageError(f"the number of samples must be >= 1, got {n}")
    info = gan_sampler(session)
    inputs = {i.name: i for i in session.get_inputs()}
    noise = inputs[info["noise"]]
    shape = info.get("noise_shape") or [d for d in noise.shape[1:]]
    if not all(isinstance(d, int) for d in shape):
        raise UsageError(f"the noise input '{noise.name}' has no fixed size: {noise.shape}")
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {noise.name: rng.standard_normal((n, *shape)).astype(np.float32)}
    condition = info.get("condition")
    if condition is None:
        if labels is not None:
            raise UsageError("this GAN is not conditional: it takes no labels")
    else:
        feed[condition] = _labels(labels, n, info.get("classes"), inputs[condition].type)
    out = session.run([info["output"]], feed)[0]
    return np.asarray(out)


def _labels(labels: np.ndarray | None, n: int, classes: int | None, onnx_type: str) -> np.ndarray:
    if labels is None:
        if not classes:
            raise UsageError("this conditional GAN's metadata has no number of classes: "
                             "give the labels")  # fmt: skip
        labels = np.arange(n) % classes
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise UsageError(f"labels must be {n} class indices, got an array of shape "
                         f"{list(labels.shape)}")  # fmt: skip
    if classes and (labels.min() < 0 or labels.max() >= classes):
        raise UsageError(f"labels must be in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    dtype = np.int32 if "int32" in onnx_type else np.int64
    return labels.astype(dtype)
