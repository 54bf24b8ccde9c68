"""Sampling a trained diffusion model on onnxruntime: DDPM and DDIM.

    sample_diffusion(session, n, seed, method="ddpm" | "ddim", steps=None, eta=0.0)

`session` runs the exported denoiser ε̂(x_t, t) (a run's model.onnx); its `dlc.sampler`
metadata (compiler/diffusion.py's sampler_metadata, written by `dlc train`) holds the
schedule's β's, the names of the input, time and output, and the data scaling. The loop
is numpy in float64, one denoiser call per step for all n samples:

- DDPM (Ho et al. 2020, Algorithm 2): from x_T ~ N(0, I), for t = T-1..0,
  x_{t-1} = μ̃(x_t, x̂0) + σ_t z with σ_t² = β_t and z ~ N(0, I) (none at t = 0), where
  x̂0 = (x_t - √(1-ᾱ_t)·ε̂)/√ᾱ_t and μ̃ is the posterior mean of q(x_{t-1} | x_t, x0),
  which with x̂0 is Algorithm 2's 1/√α_t·(x_t - β_t/√(1-ᾱ_t)·ε̂);
- DDIM (Song et al. 2021, eq. 12): `steps` time steps evenly spaced over 0..T-1 (all T
  by default), x_prev = √ᾱ_prev·x̂0 + √(1-ᾱ_prev-σ²)·ε̂ + σ z with
  σ = eta·√((1-ᾱ_prev)/(1-ᾱ_t))·√(1-ᾱ_t/ᾱ_prev); eta = 0 is deterministic, and the
  last step (ᾱ_prev = 1) returns x̂0.

With `scale: minmax` the data was mapped to [-1, 1], so x̂0 is clipped to [-1, 1] at
each step (as diffusers' clip_sample does, ε̂ recomputed from the clipped x̂0) and the
result is mapped back to the data's units. A perfect noise predictor of a one-point data
set returns that point exactly with either method.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ...compiler.errors import UsageError

METHODS = ("ddpm", "ddim")
KEY = "dlc.sampler"
ORT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(float)": np.float32, "tensor(double)": np.float64}  # fmt: skip


def sampler_metadata(session: Any) -> dict[str, Any]:
    """The `dlc.sampler` entry of the session's model, checked to be a diffusion one."""
    props = session.get_modelmeta().custom_metadata_map
    if KEY not in props:
        raise UsageError(
            "this model has no dlc.sampler metadata: it is not a diffusion model trained "
            "by dlc train",
            hint="train a spec with training.diffusion; its run's model.onnx samples",
        )
    meta = json.loads(props[KEY])
    if meta.get("kind") != "diffusion":
        raise UsageError(f"this model samples as a {meta.get('kind')} model, not by diffusion")
    return dict(meta)


def sample_diffusion(
    session: Any,
    n: int,
    seed: int,
    *,
    method: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
) -> np.ndarray:
    """n samples [n, *x's shape] in the data's own units (float32)."""
    if method not in METHODS:
        raise UsageError(f"unknown sampling method '{method}'", hint="use ddpm or ddim")
    if n < 1:
        raise UsageError(f"the number of samples must be >= 1, got {n}")
    meta = sampler_metadata(session)
    betas = np.asarray(meta["betas"], dtype=np.float64)
    T = len(betas)
    if method == "ddpm" and steps not in (None, T):
        raise UsageError(
            f"DDPM samples in all T = {T} steps; --steps {steps} is DDIM's",
            hint="use --method ddim for fewer steps",
        )
    if steps is not None and not 1 <= steps <= T:
        raise UsageError(f"steps must be in 1..{T}, got {steps}")
    if eta < 0:
        raise UsageError(f"eta must be >= 0, got {eta}")
    denoise = _Denoiser(session, meta)
    rng = np.random.default_rng(seed)
    clip = meta.get("scale") is not None
    x = rng.standard_normal((n, *denoise.shape))
    ab = np.cumprod(1.0 - betas)
    if method == "ddpm":
        x = _ddpm(denoise, x, betas, ab, rng, clip)
    else:
        x = _ddim(denoise, x, ab, _ddim_steps(T, steps or T), eta, rng, clip)
    return unscale(x, meta.get("scale")).astype(np.float32)


def _ddpm(denoise: _Denoiser, x: np.ndarray, betas: np.ndarray, ab: np.ndarray,
          rng: np.random.Generator, clip: bool) -> np.ndarray:  # fmt: skip
    for t in range(len(betas) - 1, -1, -1):
        ab_prev = ab[t - 1] if t > 0 else 1.0
        x0 = _x0(x, denoise(x, t), ab[t], clip)
        # the posterior mean μ̃(x_t, x0) of q(x_{t-1} | x_t, x0) (Ho et al. eq. 7)
        mean = (betas[t] * np.sqrt(ab_prev) * x0
                + (1.0 - ab_prev) * np.sqrt(1.0 - betas[t]) * x) / (1.0 - ab[t])  # fmt: skip
        x = mean + np.sqrt(betas[t]) * rng.standard_normal(x.shape) if t > 0 else mean
    return x


def _ddim_steps(T: int, steps: int) -> list[int]:
    """`steps` time steps evenly spaced over 0..T-1, T-1 and 0 included, descending."""
    return sorted({int(round(s)) for s in np.linspace(0, T - 1, steps)}, reverse=True)


def _ddim(denoise: _Denoiser, x: np.ndarray, ab: np.ndarray, times: list[int], eta: float,
          rng: np.random.Generator, clip: bool) -> np.ndarray:  # fmt: skip
    for i, t in enumerate(times):
        ab_prev = ab[times[i + 1]] if i + 1 < len(times) else 1.0
        eps = denoise(x, t)
        x0 = _x0(x, eps, ab[t], clip)
        if clip:  # the noise that x̂0 implies, as diffusers recomputes it
            eps = (x - np.sqrt(ab[t]) * x0) / np.sqrt(1.0 - ab[t])
        sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab[t]) * (1 - ab[t] / ab_prev))
        x = np.sqrt(ab_prev) * x0 + np.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * rng.standard_normal(x.shape)
    return x


def _x0(x: np.ndarray, eps: np.ndarray, ab: float, clip: bool) -> np.ndarray:
    """x̂0 = (x_t - √(1-ᾱ_t)·ε̂)/√ᾱ_t, clipped to the scaled data's [-1, 1] if `clip`."""
    x0 = (x - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)
    return np.clip(x0, -1.0, 1.0) if clip else x0


def unscale(x: np.ndarray, scale: dict[str, Any] | None) -> np.ndarray:
    """The model's [-1, 1] -> the data's units (runtime/train/diffusion.py's scale_data
    undone)."""
    if scale is None:
        return x
    lo, hi = float(scale["min"]), float(scale["max"])
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


class _Denoiser:
    """ε̂(x_t, t) through the session: the names, the time's dtype and rank, the shape of
    one sample, all read from the model."""

    def __init__(self, session: Any, meta: dict[str, Any]) -> None:
        self.session = session
        inputs = {i.name: i for i in session.get_inputs()}
        for key in ("input", "time"):
            if meta.get(key) not in inputs:
                raise UsageError(
                    f"dlc.sampler names the {key} '{meta.get(key)}', which the model does "
                    f"not take (its inputs: {', '.join(inputs)})"
                )
        x, t = inputs[meta["input"]], inputs[meta["time"]]
        shape = x.shape[1:]
        if not all(isinstance(d, int) for d in shape):
            raise UsageError(f"the denoiser's input {meta['input']} {x.shape} has symbolic "
                             "dims past the batch: a sample's shape must be known")  # fmt: skip
        self.shape: tuple[int, ...] = tuple(shape)
        self.x_name, self.t_name, self.out = meta["input"], meta["time"], meta["output"]
        self.x_dtype = ORT_DTYPES.get(x.type, np.float32)
        self.t_dtype = ORT_DTYPES.get(t.type, np.int64)
        self.t_rank = len(t.shape)

    def __call__(self, x: np.ndarray, t: int) -> np.ndarray:
        n = x.shape[0]
        times = np.full((n, 1) if self.t_rank == 2 else (n,), t, dtype=self.t_dtype)
        feeds = {self.x_name: x.astype(self.x_dtype), self.t_name: times}
        (eps,) = self.session.run([self.out], feeds)
        return np.asarray(eps, dtype=np.float64)
