"""The `training.diffusion` objective checked: a DDPM forward process and its denoiser.

    training:
      diffusion: {schedule: linear, T: 1000, beta_start: 1e-4, beta_end: 0.02,
                  input: x, time: t, output: eps, scale: minmax}

The model is the denoiser ε̂(x_t, t): its `input` takes the noisy sample x_t (the data's
array of the same name is x0), its `time` input the step t in 0..T-1, and its `output`
predicts the noise ε, so it has the input's shape. `diffusion_plan` reads the section
(the schema has checked its types and ranges), `check_diffusion` checks it against the
typed graph, each mistake where the spec wrote it. `schedule_betas` and
`alphas_cumprod` are the schedules in numpy, shared by the training loop and the sampler
(which reads them from the exported model's `dlc.sampler` metadata). No torch here,
and numpy only when a schedule is computed (the front end imports this module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import Collector, ElaborationError, Loc, did_you_mean
from .ir import Graph

if TYPE_CHECKING:  # numpy is imported where a schedule is computed: `dlc check` needs none
    import numpy as np

    from .loader import Document
    from .spec import TrainingSpec

SCHEDULES = ("linear", "cosine")
COSINE_S = 0.008  # Nichol & Dhariwal 2021's offset, so β₀ is not vanishingly small
MAX_BETA = 0.999  # ... and their clip, so β near t = T stays below 1
NOISE = "noise"  # the target name of the synthesized MSE term: the ε the loop draws


@dataclass(frozen=True, slots=True)
class DiffusionPlan:
    """`training.diffusion` with defaults filled in, and where each key was written
    (`locs`: key -> Loc; the section's own place for a key left out)."""

    schedule: str = "linear"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    input: str = "x"
    time: str = "t"
    output: str = ""
    scale: str = "minmax"
    locs: tuple[tuple[str, Loc], ...] = ()
    loc: Loc | None = None

    def where(self, key: str) -> Loc | None:
        return dict(self.locs).get(key, self.loc)

    def betas(self) -> np.ndarray:
        return schedule_betas(self.schedule, self.T, self.beta_start, self.beta_end)

    def sampler_metadata(self, scale: dict[str, Any] | None) -> dict[str, Any]:
        """The `dlc.sampler` entry of the exported denoiser: the schedule (its parameters
        and its β's, so a sampler needs no formula), the names, and the data scaling."""
        return {
            "kind": "diffusion",
            "prediction": "epsilon",
            "schedule": self.schedule,
            "T": self.T,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "betas": [float(b) for b in self.betas()],
            "input": self.input,
            "time": self.time,
            "output": self.output,
            "scale": scale,
        }


def schedule_betas(schedule: str, T: int, beta_start: float = 1e-4,
                   beta_end: float = 0.02) -> np.ndarray:  # fmt: skip
    """β_1..β_T (index 0..T-1), float64. linear: evenly from beta_start to beta_end (Ho
    et al. 2020); cosine: β_t = 1 - ᾱ(t+1)/ᾱ(t) for ᾱ(t) = f(t)/f(0), f(t) =
    cos²((t/T + s)/(1 + s)·π/2), clipped at 0.999 (Nichol & Dhariwal 2021)."""
    import numpy as np

    if schedule == "linear":
        return np.linspace(beta_start, beta_end, T, dtype=np.float64)
    if schedule == "cosine":
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
        return np.minimum(1 - f[1:] / f[:-1], MAX_BETA)
    raise ValueError(f"unknown schedule {schedule!r}")


def alphas_cumprod(betas: np.ndarray) -> np.ndarray:
    """ᾱ_t = Π_{s<=t} (1 - β_s), float64."""
    import numpy as np

    return np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))


def diffusion_plan(t: TrainingSpec, doc: Document) -> DiffusionPlan | None:
    """The section's plan (the schema checked its types), or None without one."""
    raw = dict(t.options).get("diffusion")
    if raw is None:
        return None
    path = ("training", "diffusion")
    keys = ("schedule", "T", "beta_start", "beta_end", "input", "time", "output", "scale")
    given = {k: raw[k] for k in keys if k in raw}
    for k in ("beta_start", "beta_end"):
        if k in given:
            given[k] = float(given[k])
    locs = tuple((k, doc.loc(path + (k,))) for k in given)
    return DiffusionPlan(**given, locs=locs, loc=doc.key_loc(path))


def check_schedule(plan: DiffusionPlan, errors: Collector) -> None:
    if plan.schedule == "linear" and plan.beta_end <= plan.beta_start:
        errors.add(
            f"the linear schedule needs beta_end > beta_start, got beta_start="
            f"{plan.beta_start:g} and beta_end={plan.beta_end:g}",
            plan.where("beta_end"),
            "the noise grows with t: e.g. beta_start: 1e-4, beta_end: 0.02 (Ho et al.)",
        )


def check_diffusion(plan: DiffusionPlan, graph: Graph) -> None:
    """The denoiser fits the objective: `input` and `time` are inputs of the model,
    `output` one of its outputs with the input's shape, and t is [B] or [B, 1] with the
    input's batch; raises an ElaborationError listing every mistake."""
    errors = Collector(ElaborationError)
    check_schedule(plan, errors)
    inputs = {i.name: i.type for i in graph.inputs}
    types = graph.types()
    outputs = {name: types[value] for name, value in graph.outputs}
    for key, name in (("input", plan.input), ("time", plan.time)):
        if name not in inputs:
            errors.add(
                f"diffusion's {key} is '{name}', which is not an input of the model"
                f"{did_you_mean(name, inputs)}",
                plan.where(key),
                f"the model's inputs are {', '.join(inputs)}; declare "
                + ("`x: [B, ...]` (the noisy sample x_t)" if key == "input"
                   else "`t: {shape: [B], dtype: int64}` (the time step)"),
            )  # fmt: skip
    if plan.input == plan.time and plan.input in inputs:
        errors.add(
            f"diffusion's input and time are both '{plan.input}'",
            plan.where("time"),
            "the denoiser takes x_t and t as two inputs",
        )
    if plan.output not in outputs:
        errors.add(
            f"diffusion's output is '{plan.output}', which the model does not have"
            f"{did_you_mean(plan.output, outputs)}",
            plan.where("output"),
            f"the model's outputs are {', '.join(outputs)}",
        )
    x = inputs.get(plan.input)
    if x is not None and x.dtype not in ("float32", "float64", "float16", "bfloat16"):
        errors.add(
            f"diffusion's input '{plan.input}' is {x.dtype}: the noisy sample x_t is real",
            plan.where("input"),
            "declare it float32 (the default dtype)",
        )
    eps = outputs.get(plan.output)
    if x is not None and eps is not None and eps.shape != x.shape:
        errors.add(
            f"the denoiser's output '{plan.output}' {eps} predicts the noise of input "
            f"'{plan.input}' {x}, so it needs the input's shape",
            plan.where("output"),
            "end the model with a layer of the input's width (dense(2) for 2-D points, "
            "conv2d(channels, 1) for images)",
        )
    for node in (n for n in graph.nodes if n.op == "standardize"):
        errors.add(
            "a diffusion denoiser has no standardize layer: it sees x_t, not the data",
            node.loc,
            "the objective scales the data itself (scale: minmax); remove standardize",
        )
    t = inputs.get(plan.time)
    if t is not None and plan.time != plan.input:
        batch = x.shape[0] if x is not None and x.rank else None
        if not (t.rank == 1 or (t.rank == 2 and t.shape[1] == 1)) or (
            batch is not None and t.shape[0] != batch
        ):
            errors.add(
                f"diffusion's time input '{plan.time}' is {t}: it takes one step per "
                f"example, [{batch or 'B'}] or [{batch or 'B'}, 1]",
                plan.where("time"),
                f"declare `{plan.time}: {{shape: [{batch or 'B'}], dtype: int64}}`",
            )
        elif t.dtype == "bool":
            errors.add(
                f"diffusion's time input '{plan.time}' is bool: t is a step 0..T-1",
                plan.where("time"),
                "declare it int64 or float32",
            )
    errors.raise_if_any()
