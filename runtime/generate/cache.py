"""A run's cached decoder: decoder_cached.onnx beside its model.onnx, written on first use
by `dlc generate` (compiler/lower/onnx_cached.py's lowering of the run's spec, with the
trained weights read back from model.onnx's initializers, which carry the weight keys).

It is rebuilt when model.onnx changes (the cached decoder's metadata holds model.onnx's
SHA-256) and used only after it agrees with model.onnx: the logits of a short random
prefix fed in two pieces, against the full model's, within `TOLERANCE`. A model that has
no cache to keep (no causal attention: an LSTM encoder-decoder) or whose cached
decoder disagrees (an op that mixes positions without a cached rule) decodes without one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from .model import ModelInfo

CACHED = "decoder_cached.onnx"
SOURCE_KEY = "dlc.kv_cache.source_sha256"
TOLERANCE = 1e-4


def cached_session(run: Path, info: ModelInfo, warn: bool = True) -> Any:
    """An onnxruntime session of the run's cached decoder, built if need be; None when
    the model has no cache to keep (said on stderr when `warn`)."""
    import onnx

    from ..predict import open_session

    model_path, path = run / "model.onnx", run / CACHED
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if path.is_file():
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                 .metadata_props}  # fmt: skip
        if props.get(SOURCE_KEY) == digest:
            return open_session(path)
    reason = build(run, path, digest, info.tokens.name)
    if reason is not None:
        if warn:
            print(f"note: decoding without a key-value cache: {reason}", file=sys.stderr)
        return None
    session = open_session(path)
    reason = disagreement(session, open_session(model_path), info)
    if reason is not None:
        path.unlink()
        if warn:
            print(f"note: decoding without a key-value cache: {reason}", file=sys.stderr)
        return None
    return session


def build(run: Path, path: Path, digest: str, tokens: str | None = None) -> str | None:
    """Write the cached decoder of `run` to `path`; the reason when there is none."""
    import onnx
    from onnx import numpy_helper

    from ...compiler.lower.onnx_cached import CacheUnsupported, to_onnx_cached
    from ...compiler.pipeline import check_file

    full = onnx.load(str(run / "model.onnx"))
    spec = run / "spec.yaml"
    if not spec.is_file():
        return f"the run folder {run} has no spec.yaml"
    overrides = []
    if (run / "run.json").is_file():
        overrides = json.loads((run / "run.json").read_text()).get("overrides", [])
    checked = check_file(spec, overrides)
    weights = {t.name: numpy_helper.to_array(t) for t in full.graph.initializer}
    opset = next(o.version for o in full.opset_import if o.domain in ("", "ai.onnx"))
    metadata = {p.key: p.value for p in full.metadata_props}
    metadata[SOURCE_KEY] = digest
    try:
        model = to_onnx_cached(checked.graph, weights, opset=opset,
                               extra_outputs=checked.export_outputs, metadata=metadata,
                               tokens=tokens)  # fmt: skip
    except CacheUnsupported as e:
        return str(e)
    atomic_write(path, model.SerializeToString())
    return None


def disagreement(cached: Any, full: Any, info: ModelInfo) -> str | None:
    """None when the cached decoder's logits equal the full model's on a random prefix
    fed as a prompt and then one token at a time; else what differs."""
    length = min(4, info.max_positions or 4)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, info.tokens.vocab or info.vocab, (1, length))
    tokens = tokens.astype(info.tokens.dtype)
    source = {}
    if info.source is not None:  # an encoder-decoder: a random source of 5 tokens
        ids = rng.integers(0, info.source.vocab or info.vocab, (1, 5))
        source = {info.source.name: ids.astype(info.source.dtype)}
    (ref,) = full.run([info.output], {info.tokens.name: tokens, **source})
    pasts = [i for i in cached.get_inputs() if i.name.startswith("past_key_values.")]
    presents = [p.name.replace("past_key_values", "present") for p in pasts]
    feeds = {p.name: np.zeros((1, p.shape[1], 0, p.shape[3]), np.float32) for p in pasts}
    got = []
    first = max(1, length - 2)  # a prompt, then one token at a time
    for lo, hi in ((0, first), *((t, t + 1) for t in range(first, length))):
        step = {info.tokens.name: tokens[:, lo:hi], **feeds, **source}
        out = cached.run([info.output, *presents], step)
        got.append(out[0])
        feeds = dict(zip((p.name for p in pasts), out[1:], strict=True))
    err = float(np.abs(np.concatenate(got, axis=1) - ref).max())
    if not err <= TOLERANCE * max(1.0, float(np.abs(ref).max())):
        return f"its logits differ from model.onnx's by {err:.3g} (an op mixes positions)"
    return None
