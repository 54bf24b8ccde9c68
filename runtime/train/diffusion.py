"""`dlc train` of a `training.diffusion` spec: the DDPM noise-prediction objective.

Per example the loop draws t uniformly from 0..T-1 and ε ~ N(0, I), feeds the denoiser
x_t = √ᾱ_t·x0 + √(1-ᾱ_t)·ε (x0 the data's array named by `input`, scaled to [-1, 1]
with `scale: minmax`) and t, and minimizes the MSE between its output and ε (Ho et al.
2020, Algorithm 1). Everything else is `Trainer`'s: optimizer, schedule, checkpoints,
early stopping, the run folder.

Guarantees: the draws of optimizer step k are a function of (seed, k), so a run is
repeatable and a resumed one draws what an uninterrupted one would; the validation loss
uses the same draws every epoch (a fixed generator per split), so epochs compare; the
scaling is fitted on the training split alone and model.onnx's `dlc.sampler` metadata
records it with the schedule, for runtime/sample/diffusion.py to undo.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from ...compiler.diffusion import NOISE, DiffusionPlan, alphas_cumprod
from ...compiler.errors import DataError, Loc
from ...compiler.pipeline import Checked
from ...compiler.training import DataOptions
from .data import Dataset
from .feeds import TORCH_DTYPES, Feeds, Split, fit_input, load_splits
from .loop import Setup, Trainer

SAMPLER_KEY = "dlc.sampler"
VAL_SEED = 20_200_619  # the validation draws' seed: fixed, whatever the training seed


def trainer_class(checked: Checked) -> type[Trainer]:
    """The trainer of a one-network spec: DiffusionTrainer under `training.diffusion`, else
    Trainer (dlc train, dlc search's trials and dlc lint --probe all ask here)."""
    plan = checked.training
    return DiffusionTrainer if plan is not None and plan.diffusion is not None else Trainer


class DiffusionTrainer(Trainer):
    """A Trainer whose steps noise the data first (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.plan.diffusion is not None, "dlc train picks this trainer for diffusion"
        self.diffusion: DiffusionPlan = self.plan.diffusion
        ab = alphas_cumprod(self.diffusion.betas())
        self.sqrt_ab = torch.tensor(np.sqrt(ab), dtype=torch.float32)
        self.sqrt_1mab = torch.tensor(np.sqrt(1.0 - ab), dtype=torch.float32)
        self.scale: dict[str, Any] | None = None  # fitted by load_feeds
        self.draws = 0  # optimizer steps drawn so far: the next step's seed

    # ---- the data: x0 only; x_t and t are drawn per step ----------------------------

    def load_feeds(self, data: DataOptions) -> Feeds:
        train, val, test = load_splits(data, self.spec_path, self.plan.loc)
        train_split = self._split(train, data.train_loc)
        self.scale = fit_scale(self.diffusion.scale, train_split.inputs[self.diffusion.input])
        return Feeds(
            train_split,
            self._split(val, data.val_loc or data.train_loc) if val is not None else None,
            self._split(test, data.test_loc or data.train_loc) if test is not None else None,
            train,
        )

    def _split(self, ds: Dataset, loc: Loc | None) -> Split:
        name = self.diffusion.input
        graph_input = next(i for i in self.graph.inputs if i.name == name)
        if name not in ds.arrays:
            raise DataError(
                f"{ds.name} has no array '{name}' for the diffusion's x0",
                self.diffusion.where("input") or loc,
                f"its arrays: {', '.join(ds.arrays)}; name the model input after one",
            )
        x0 = fit_input(ds.arrays[name], graph_input, ds.name, loc)
        return Split({name: x0.to(self.device)}, {}, len(ds))

    # ---- the objective -----------------------------------------------------------------

    def setup(self) -> Setup:
        run = super().setup()
        self.metric_term = None  # the loss is the metric: there is no target array
        self.draws = run.state.step
        return run

    def noised(
        self, x0: torch.Tensor, generator: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The denoiser's inputs {input: x_t, time: t} and the target {noise: ε} for the
        clean batch x0 (in the data's units), drawn from `generator` on the CPU."""
        d = self.diffusion
        n = x0.shape[0]
        t = torch.randint(0, d.T, (n,), generator=generator)
        eps = torch.randn(tuple(x0.shape), generator=generator).to(x0.device)
        shape = (n,) + (1,) * (x0.ndim - 1)
        a = self.sqrt_ab[t].reshape(shape).to(x0.device)
        b = self.sqrt_1mab[t].reshape(shape).to(x0.device)
        x_t = a * scale_data(x0, self.scale) + b * eps
        return {d.input: x_t, d.time: self._time(t).to(x0.device)}, {NOISE: eps}

    def _time(self, t: torch.Tensor) -> torch.Tensor:
        """t as the time input takes it: its dtype, [B] or [B, 1]."""
        graph_input = next(i for i in self.graph.inputs if i.name == self.diffusion.time)
        t = t.to(TORCH_DTYPES.get(graph_input.type.dtype, torch.float32))
        return t.reshape(-1, 1) if graph_input.type.rank == 2 else t

    def step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Any,
        kind: str,
        inputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.opts.seed * 1_000_003 + self.draws)
        self.draws += 1
        noisy, noise = self.noised(inputs[self.diffusion.input], g)
        return super().step(model, optimizer, precision, kind, noisy, noise)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Split) -> dict[str, float]:
        """The loss on `data` with the same draws every call: comparable across epochs."""
        model.eval()
        g = torch.Generator().manual_seed(VAL_SEED)
        total = 0.0
        for n, inputs, _ in data.chunks():
            noisy, noise = self.noised(inputs[self.diffusion.input], g)
            outputs = self.forward(model, noisy)
            eps = outputs[self.diffusion.output].float()
            total += float(torch.mean((eps - noise[NOISE]) ** 2)) * n
        return {"loss": total / max(data.n, 1)}

    # ---- the export: the sampler's metadata --------------------------------------------

    def export_metadata(self) -> dict[str, str]:
        """`dlc.sampler` with the scaling fitted on the training split, in place of the
        entry `dlc compile` writes without it."""
        return {SAMPLER_KEY: json.dumps(self.diffusion.sampler_metadata(self.scale))}


def fit_scale(method: str, x0: torch.Tensor) -> dict[str, Any] | None:
    """`scale: minmax`: the training split's min and max (one pair for the array: pixels
    and coordinates keep their relative scales), which map the data to [-1, 1]."""
    if method == "none":
        return None
    lo, hi = float(x0.min()), float(x0.max())
    if hi <= lo:  # a constant array: shift it to 0, scale 1
        hi = lo + 2.0
    return {"method": "minmax", "min": lo, "max": hi}


def scale_data(x: torch.Tensor, scale: dict[str, Any] | None) -> torch.Tensor:
    """Data units -> the model's [-1, 1] (the identity without a scale)."""
    if scale is None:
        return x
    lo, hi = scale["min"], scale["max"]
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


