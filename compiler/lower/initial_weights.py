"""Initial weights, with the course's formulas, in numpy: the arrays of the init schemes
that compiler/inits.py names and checks.

One implementation of every init scheme serves both lowerings: the ONNX export of an
untrained model (no torch needed) and the torch module (which copies these arrays in),
so the same seed gives the same weights everywhere. N(0, v) below is a normal with
*variance* v, as in the course:

    lecun_normal   N(0, 1/fan_in)              lecun_uniform  U(±√(3/fan_in))
    glorot_normal  N(0, 2/(fan_in+fan_out))    glorot_uniform U(±√(6/(fan_in+fan_out)))
    he_normal      N(0, 2/fan_in)              he_uniform     U(±√(6/fan_in))
    orthogonal(gain), zeros, ones, constant(value), uniform(a, b), normal(mean, std)

One init is no scheme a spec names but a parameter derived from another of its node:
`norm(of=v)`, weight_norm's g (ops/linear/weightnorm.py), is ‖v‖ over every axis but the
first, as torch sets it when it wraps a module, so the weight g·v/‖v‖ starts equal to v.

Fans follow PyTorch: a weight [out, in, *kernel] has fan_in = in·∏kernel and
fan_out = out·∏kernel; a vector's fans are its length.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, InitSpec, ParamSpec


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def init_array(spec: InitSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A float32 array of `shape` drawn as `spec` says."""
    fan_in, fan_out = fans(shape)
    name = spec.name
    if name == "zeros":
        return np.zeros(shape, np.float32)
    if name == "ones":
        return np.ones(shape, np.float32)
    if name == "constant":
        return np.full(shape, spec.arg("value"), np.float32)
    if name == "uniform":
        return rng.uniform(spec.arg("a", -0.05), spec.arg("b", 0.05), shape).astype(np.float32)
    if name == "normal":
        return rng.normal(spec.arg("mean", 0.0), spec.arg("std", 1.0), shape).astype(np.float32)
    if name == "orthogonal":
        return _orthogonal(shape, spec.arg("gain", 1.0), rng)
    variance = _VARIANCE[name](fan_in, fan_out)
    if name.endswith("_normal"):
        return rng.normal(0.0, math.sqrt(variance), shape).astype(np.float32)
    bound = math.sqrt(3.0 * variance)  # U(-a, a) has variance a²/3
    return rng.uniform(-bound, bound, shape).astype(np.float32)


_VARIANCE = {
    "lecun_normal": lambda i, o: 1.0 / i,
    "lecun_uniform": lambda i, o: 1.0 / i,
    "glorot_normal": lambda i, o: 2.0 / (i + o),
    "glorot_uniform": lambda i, o: 2.0 / (i + o),
    "he_normal": lambda i, o: 2.0 / i,
    "he_uniform": lambda i, o: 2.0 / i,
}


def _orthogonal(shape: tuple[int, ...], gain: float, rng: np.random.Generator) -> np.ndarray:
    rows = shape[0] if shape else 1
    cols = math.prod(shape[1:]) if len(shape) > 1 else 1
    a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # a uniform distribution over orthogonal matrices
    q = q if rows >= cols else q.T
    return (gain * q[:rows, :cols]).reshape(shape).astype(np.float32)


def param_array(p: ParamSpec, rng: np.random.Generator) -> np.ndarray:
    if p.name == "num_batches_tracked":
        return np.zeros((), np.int64)
    return init_array(p.init, p.shape, rng)


def _norm_except_first(v: np.ndarray) -> np.ndarray:
    """‖v‖ over every axis but the first, kept as size-1 axes (torch's norm_except_dim)."""
    axes = tuple(range(1, v.ndim))
    norm = np.sqrt(np.sum(np.square(v, dtype=np.float64), axis=axes, keepdims=True))
    return norm.astype(np.float32)


def initial_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Every weight and buffer of a typed graph, keyed like torch's state_dict."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for n in graph.nodes:
        drawn = {p.name: param_array(p, rng) for p in n.params if p.init.name != "norm"}
        for p in n.params:
            value = drawn.get(p.name)
            if value is None:  # derived after the draws, so the param it reads is drawn
                value = _norm_except_first(drawn[p.init.arg("of")])
            out[f"{n.name}.{p.name}"] = value
    return out
