"""One entry to every sampler: open a model that can be sampled, check the options, draw.

`open_sampler(path)` reads the ONNX model's `dlc.sampler` metadata (written by export for
a VAE, a GAN's generator and a diffusion model) and prepares the onnxruntime session that
draws: the VAE's decoder cut out at z, the generator, the denoiser. `Sampler.draw` checks
the options against the kind (a diffusion method for a GAN, a label for an unconditional
model are errors) with the same messages for `dlc sample` and the server's sample
endpoint, and returns the samples in the data's own units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...compiler.errors import UsageError

KINDS = ("vae", "gan", "diffusion")
METHODS = ("ddpm", "ddim")
MAX_SAMPLES = 100_000


def sampler_model(source: str | Path) -> Path:
    """The model file `dlc sample` reads: the file itself, or in a run folder the GAN's
    generator.onnx, else model.onnx."""
    path = Path(source)
    if path.is_dir():
        for name in ("generator.onnx", "model.onnx"):
            if (path / name).is_file():
                return path / name
        raise UsageError(f"'{path}' is a folder but not a run folder: it has no model.onnx")
    if not path.is_file():
        raise UsageError(f"'{path}' does not exist: give a run folder or an ONNX model")
    return path


@dataclass
class Sampler:
    """A model ready to draw from: its `dlc.sampler` info and the session that draws."""

    path: Path
    info: dict[str, Any]
    session: Any

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def classes(self) -> int | None:
        """How many labels a conditional model takes (None: unconditional)."""
        if not self.info.get("condition"):
            return None
        return int(self.info.get("classes") or 0) or None

    def labels(self, n: int, label: int | None) -> np.ndarray | None:
        """The labels of a conditional model's `n` samples: `label` for all, or 0, 1, ...,
        cycling through the classes, so a grid shows each in turn."""
        if not self.info.get("condition"):
            if label is not None:
                raise UsageError(f"{self.path.name} is not conditional: it takes no label")
            return None
        classes = self.classes
        if label is not None:
            if label < 0 or (classes is not None and label >= classes):
                raise UsageError(
                    f"label {label} is out of range: {self.path.name} has {classes} classes"
                )
            return np.full(n, label, dtype=np.int64)
        if classes is None:
            raise UsageError(f"{self.path.name} is conditional: give the samples' --label")
        return np.arange(n, dtype=np.int64) % classes

    def draw(
        self,
        n: int,
        seed: int = 0,
        *,
        method: str | None = None,
        steps: int | None = None,
        label: int | None = None,
    ) -> np.ndarray:
        """`n` samples, seeded, in the data's units."""
        if not 1 <= n <= MAX_SAMPLES:
            raise UsageError(f"the number of samples must be 1..{MAX_SAMPLES:,}, got {n}")
        if self.kind != "diffusion" and (method is not None or steps is not None):
            raise UsageError(
                f"{self.path.name} is a {self.kind}: --method and --steps are a diffusion "
                "model's (its sampler's method and number of steps)"
            )
        labels = self.labels(n, label)
        if self.kind == "vae":
            from .vae import sample_vae

            return sample_vae(self.session, self.info, n, seed, labels)
        if self.kind == "gan":
            from .gan import sample_gan

            return sample_gan(self.session, n, seed, labels)
        if method is not None and method not in METHODS:
            raise UsageError(f"unknown diffusion sampler '{method}': use ddpm or ddim")
        if steps is not None and steps < 1:
            raise UsageError(f"--steps must be at least 1, got {steps}")
        from .diffusion import sample_diffusion

        # fewer steps than T is DDIM's business: --steps alone asks for it
        method = method or ("ddim" if steps is not None else "ddpm")
        return sample_diffusion(self.session, n, seed, method=method, steps=steps)


def open_sampler(source: str | Path) -> Sampler:
    """The sampler of a run folder or ONNX model; a UsageError names what is missing."""
    import onnx
    import onnxruntime as ort

    path = sampler_model(source)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - onnx's own words say what is wrong
        raise UsageError(f"'{path}' is not an ONNX model: {e}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "dlc.sampler" not in props:
        raise UsageError(
            f"{path} has nothing to sample: dlc sample draws from a VAE (a model with "
            "gaussian_sample), a GAN's generator or a diffusion model, as dlc exports them",
        )
    info = json.loads(props["dlc.sampler"])
    if info.get("kind") not in KINDS:
        raise UsageError(f"{path}: unknown sampler kind {info.get('kind')!r}")
    if info["kind"] == "vae":
        from .vae import decoder_session

        session = decoder_session(model, info)
    else:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    return Sampler(path, info, session)
