"""Diffusion (issue 13): the schedules against their formulas, the training objective
against a hand computation, the DDPM and DDIM samplers against a perfect noise
predictor, the data scaling, every bad `training.diffusion` with its place, and a short
`dlc train` of each diffusion spec sampled on onnxruntime."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import ROOT, check_layer, error_of, run_dlc
from dlc.compiler.diffusion import COSINE_S, alphas_cumprod, schedule_betas
from dlc.compiler.errors import DataError, UsageError
from dlc.compiler.ops.embed.modules import TimestepEmbedding, sinusoids
from dlc.compiler.pipeline import check_file, check_text
from dlc.runtime.sample.diffusion import sample_diffusion, unscale
from dlc.runtime.train.diffusion import DiffusionTrainer, fit_scale, scale_data

MOONS = ROOT / "specs" / "diffusion_moons.yaml"
DIGITS = ROOT / "specs" / "diffusion_digits.yaml"


# ---- the schedules ------------------------------------------------------------------


def test_linear_alphas_cumprod_is_the_product_of_one_minus_beta() -> None:
    betas = schedule_betas("linear", 1000, 1e-4, 0.02)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    ab = alphas_cumprod(betas)
    for t in (0, 1, 10, 500, 999):
        beta = [1e-4 + (0.02 - 1e-4) * s / 999 for s in range(t + 1)]
        assert ab[t] == pytest.approx(math.prod(1 - b for b in beta), rel=1e-12)


def test_cosine_alphas_cumprod_is_nichol_and_dhariwals_f_ratio() -> None:
    """ᾱ_t = f(t+1)/f(0) (index t is step t+1), f(t) = cos²((t/T + s)/(1 + s)·π/2),
    until the clip of β at 0.999 bites at the very end."""
    T = 1000
    ab = alphas_cumprod(schedule_betas("cosine", T))

    def f(t: float) -> float:
        return math.cos((t / T + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2

    for t in (0, 1, 100, 500, 900, 990):
        assert ab[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert schedule_betas("cosine", T).max() == pytest.approx(0.999)


# ---- the op ---------------------------------------------------------------------------


def test_timestep_embedding_is_the_positional_encoding_read_at_t() -> None:
    t = torch.tensor([0, 3, 17, 999])
    got = TimestepEmbedding(8)(t)
    np.testing.assert_allclose(got.numpy(), sinusoids(1000, 8)[t].numpy(), atol=2e-4)
    # real-valued t: sin on the even features, cos on the odd, rate P^(-2i/D)
    e = TimestepEmbedding(4, max_period=100.0)(torch.tensor([2.5])).numpy()[0]
    want = [math.sin(2.5), math.cos(2.5), math.sin(2.5 / 10), math.cos(2.5 / 10)]
    np.testing.assert_allclose(e, want, rtol=1e-6)
    assert check_layer("timestep_embedding(8)", "[B]", dtype="int64").graph.nodes


# ---- the objective --------------------------------------------------------------------


def _trainer(tmp_path: Path, spec: Path = MOONS, n: int = 64) -> DiffusionTrainer:
    text = spec.read_text().replace("n=8000", f"n={n}")
    path = tmp_path / spec.name
    path.write_text(text)
    return DiffusionTrainer(check_file(path), path, None, device="cpu", quiet=True)


def test_the_loss_noises_x0_with_the_alphas_of_the_drawn_t(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    run = trainer.setup()
    x0 = run.train.inputs["x"][:16]
    g = torch.Generator().manual_seed(7)
    inputs, targets = trainer.noised(x0, g)
    # the same draws, by hand: t first, then ε
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 1000, (16,), generator=g)
    eps = torch.randn((16, 2), generator=g)
    assert torch.equal(inputs["t"], t) and inputs["t"].dtype == torch.int64
    assert torch.equal(targets["noise"], eps)
    lo, hi = float(run.train.inputs["x"].min()), float(run.train.inputs["x"].max())
    xs = (x0.double() - lo) / (hi - lo) * 2 - 1
    assert float(xs.min()) >= -1 and float(xs.max()) <= 1
    beta = np.linspace(1e-4, 0.02, 1000)
    ab = torch.tensor([np.prod(1 - beta[: k + 1]) for k in t.tolist()])[:, None]
    want = ab.sqrt() * xs + (1 - ab).sqrt() * eps.double()
    torch.testing.assert_close(inputs["x"].double(), want, rtol=1e-5, atol=1e-5)
    # the loss is the MSE between the denoiser's output and ε
    model = trainer.model
    loss = trainer.loss(trainer.forward(model, inputs), targets)
    hand = torch.mean((model(x=inputs["x"], t=inputs["t"]) - eps) ** 2)
    torch.testing.assert_close(loss, hand)


def test_a_training_step_and_a_fixed_validation_loss(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    run = trainer.setup()
    first = trainer.evaluate(trainer.model, run.val or run.train)
    assert first == trainer.evaluate(trainer.model, run.val or run.train)  # the same draws
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    loss, _ = trainer.step(trainer.model, run.optimizer, run.precision, run.closure_kind,
                           *run.train.take(torch.arange(8)))  # fmt: skip
    assert math.isfinite(float(loss)) and trainer.draws == 1
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_scaling_round_trips() -> None:
    x = torch.tensor([[0.0, 16.0], [3.0, 8.0]])
    scale = fit_scale("minmax", x)
    assert scale == {"method": "minmax", "min": 0.0, "max": 16.0}
    xs = scale_data(x, scale)
    assert float(xs.min()) == -1.0 and float(xs.max()) == 1.0
    np.testing.assert_allclose(unscale(xs.numpy().astype(np.float64), scale), x.numpy())
    assert fit_scale("none", x) is None and scale_data(x, None) is x


# ---- the samplers, with a perfect noise predictor ------------------------------------


class PerfectDenoiser:
    """A stand-in for an onnxruntime session of a denoiser trained on one point x0:
    ε̂(x_t, t) = (x_t - √ᾱ_t·x0)/√(1-ᾱ_t), x0 scaled as training scales it."""

    def __init__(
        self,
        x0: np.ndarray,
        schedule: str = "linear",
        T: int = 1000,
        scale: dict[str, Any] | None = None,
        time_shape: tuple[str | int, ...] = ("B",),
    ) -> None:
        self.betas = schedule_betas(schedule, T)
        self.ab = alphas_cumprod(self.betas)
        lo, hi = (-1.0, 1.0) if scale is None else (scale["min"], scale["max"])
        self.x0 = (x0 - lo) * 2 / (hi - lo) - 1  # the identity without a scale
        self.meta = {"kind": "diffusion", "betas": self.betas.tolist(), "input": "x",
                     "time": "t", "output": "eps", "scale": scale}  # fmt: skip
        self.time_shape = time_shape
        self.calls = 0

    def get_modelmeta(self) -> Any:
        return type("Meta", (), {"custom_metadata_map": {"dlc.sampler": json.dumps(self.meta)}})

    def get_inputs(self) -> list[Any]:
        def arg(name: str, shape: list, type_: str) -> Any:
            return type("Arg", (), {"name": name, "shape": shape, "type": type_})

        return [arg("x", ["B", *self.x0.shape], "tensor(float)"),
                arg("t", list(self.time_shape), "tensor(int64)")]  # fmt: skip

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        x, t = feeds["x"].astype(np.float64), feeds["t"].reshape(-1)
        assert feeds["t"].shape == ((len(x),) if len(self.time_shape) == 1 else (len(x), 1))
        assert (t == t[0]).all(), "one step for the whole batch"
        ab = self.ab[t[0]]
        return [((x - math.sqrt(ab) * self.x0) / math.sqrt(1 - ab)).astype(np.float32)]


X0 = np.array([0.5, -0.25])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_with_a_perfect_denoiser_returns_the_one_point(schedule: str) -> None:
    session = PerfectDenoiser(X0, schedule)
    out = sample_diffusion(session, 16, seed=0)
    assert out.shape == (16, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.broadcast_to(X0, out.shape), atol=1e-5)
    assert session.calls == 1000


@pytest.mark.parametrize(("steps", "eta"), [(50, 0.0), (10, 1.0), (None, 0.0)])
def test_ddim_with_a_perfect_denoiser_returns_the_one_point(steps: int | None, eta: float) -> None:
    session = PerfectDenoiser(X0, "cosine", T=200, time_shape=("B", 1))
    out = sample_diffusion(session, 8, seed=1, method="ddim", steps=steps, eta=eta)
    np.testing.assert_allclose(out, np.broadcast_to(X0, out.shape), atol=1e-5)
    assert session.calls == (steps or 200)


def test_the_samplers_map_back_to_the_datas_units() -> None:
    """A digit-like point in 0..16, the model working in [-1, 1]."""
    x0 = np.array([[0.0, 16.0], [7.0, 3.0]])
    scale = {"method": "minmax", "min": 0.0, "max": 16.0}
    for method in ("ddpm", "ddim"):
        out = sample_diffusion(PerfectDenoiser(x0, T=100, scale=scale), 4, 0, method=method)
        assert out.shape == (4, 2, 2)
        np.testing.assert_allclose(out, np.broadcast_to(x0, out.shape), atol=1e-4)


def test_ddim_with_eta_zero_is_deterministic_and_ddpm_is_seeded() -> None:
    """An imperfect denoiser (it believes in the wrong point), so the noise shows."""
    session = PerfectDenoiser(X0, T=50)
    session.x0 = np.array([0.0, 0.0])
    a = sample_diffusion(session, 4, 0, method="ddim", steps=10)
    b = sample_diffusion(session, 4, 0, method="ddim", steps=10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sample_diffusion(session, 4, 0), sample_diffusion(session, 4, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "euler"}, "unknown sampling method 'euler'"),
        ({"method": "ddpm", "steps": 10}, "DDPM samples in all T = 50 steps"),
        ({"method": "ddim", "steps": 51}, "steps must be in 1..50, got 51"),
        ({"method": "ddim", "eta": -1.0}, "eta must be >= 0"),
    ],
)
def test_bad_sampler_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sample_diffusion(PerfectDenoiser(X0, T=50), 2, 0, **kwargs)


# ---- the spec's mistakes, each where it was written -----------------------------------

SPEC = MOONS.read_text()


@pytest.mark.parametrize(
    ("old", "new", "message", "line", "col"),
    [
        ("T: 1000", "T: 0", "training.diffusion.T must be at least 1, not 0", 26, 36),
        ("schedule: linear", "schedule: quadratic",
         "training.diffusion.schedule must be one of linear, cosine, not 'quadratic'", 26, 25),
        ("beta_end: 0.02", "beta_end: 0.00001",
         "the linear schedule needs beta_end > beta_start", 26, 72),
        ("input: x,", "input: z,", "diffusion's input is 'z', which is not an input of the "
         "model", 27, 22),
        ("time: t,", "time: tt,", "diffusion's time is 'tt', which is not an input of the "
         "model (did you mean 't'?)", 27, 31),
        ("time: t,", "time: x,", "diffusion's input and time are both 'x'", 27, 31),
        ("output: eps,", "output: e,", "diffusion's output is 'e', which the model does not "
         "have", 27, 42),
        ("-> dense(2)", "-> dense(3)", "the denoiser's output 'eps' [B, 3] predicts the noise "
         "of input 'x' [B, 2], so it needs the input's shape", 27, 42),
        ("h1: concat(x,", "h1: concat(x -> standardize,", "a diffusion denoiser has no "
         "standardize layer: it sees x_t, not the data", 20, 19),
        ("  optimizer: adam", "  loss: mse\n  optimizer: adam",
         "training.diffusion sets the loss", 28, 9),
    ],
)  # fmt: skip
def test_bad_diffusion_sections(old: str, new: str, message: str, line: int, col: int) -> None:
    assert old in SPEC
    err = error_of(SPEC.replace(old, new, 1))
    assert message in err.render()
    assert err.loc is not None and (err.loc.line, err.loc.col) == (line, col)


TIME_SPEC = """dlc: 1
name: d
inputs:
  x: [B, 2]
  t: [B, 2]
model:
  h: concat(x, t, axis=-1) -> dense(2)
training:
  diffusion: {T: 10, time: t}
"""


def test_a_time_input_of_the_wrong_shape() -> None:
    err = error_of(TIME_SPEC)
    assert (
        "diffusion's time input 't' is [B, 2]: it takes one step per example, [B] or "
        "[B, 1]" in err.render()
    )
    assert err.loc is not None and (err.loc.line, err.loc.col) == (9, 28)
    # defaults: linear, input x, output the first one; a good [B, 1] time checks
    checked = check_text(TIME_SPEC.replace("t: [B, 2]", "t: [B, 1]"))
    plan = checked.training.diffusion if checked.training else None
    assert plan is not None and (plan.schedule, plan.input, plan.output) == ("linear", "x", "y")


def test_the_data_needs_the_inputs_array(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    text = TIME_SPEC.replace("t: [B, 2]", "t: [B, 1]").replace("x: [B, 2]", "z: [B, 2]")
    text = text.replace("concat(x,", "concat(z,").replace(
        "{T: 10, time: t}", "{T: 10, time: t, input: z}\n  data: {train: 'builtin:xor'}"
    )
    path.write_text(text)
    trainer = DiffusionTrainer(check_file(path), path, None, device="cpu", quiet=True)
    with pytest.raises(DataError) as info:
        trainer.setup()
    assert "has no array 'z' for the diffusion's x0" in info.value.render()
    assert info.value.loc is not None and (info.value.loc.line, info.value.loc.col) == (9, 38)


# ---- dlc train of the specs, sampled on onnxruntime -----------------------------------


@pytest.mark.parametrize(
    ("spec", "shape"),
    [(MOONS, (5, 2)), pytest.param(DIGITS, (5, 1, 8, 8), marks=pytest.mark.slow)],
    ids=["moons", "digits"],
)
def test_train_a_diffusion_spec_then_sample_it(tmp_path: Path, spec: Path, shape: tuple) -> None:
    import onnxruntime as ort

    out = tmp_path / "run"
    result = run_dlc("train", str(spec), "--out", str(out), "--quiet",
                     "--set", "training.epochs=1", "--set", "training.steps=3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["dlc.sampler"])
    assert meta["kind"] == "diffusion" and meta["T"] == 1000 and len(meta["betas"]) == 1000
    assert meta["scale"]["method"] == "minmax" and meta["scale"]["min"] < meta["scale"]["max"]
    for method, steps in (("ddim", 5), ("ddpm", None)):
        samples = sample_diffusion(session, 5, 0, method=method, steps=steps)
        assert samples.shape == shape and np.isfinite(samples).all()
        lo, hi = meta["scale"]["min"], meta["scale"]["max"]  # clipped x̂0: within the data's range
        assert samples.min() >= lo - 1e-3 and samples.max() <= hi + 1e-3
