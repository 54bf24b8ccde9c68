"""Several networks in one spec and adversarial training (`networks:`, `training.gan`).

The wiring checks with located messages; each GAN loss against a hand computation, the
gradient penalty against its closed form, EMA and label smoothing; the step order (D on a
detached fake, G through a frozen D); a seed's run is one run; `dlc train` of each GAN
spec writing generator.onnx, discriminator.onnx and the per-epoch PNGs; generator.onnx
against the torch generator; `sample_gan`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import ROOT, error_of, run_dlc
from dlc.compiler.errors import ElaborationError, SchemaError, UsageError
from dlc.compiler.pipeline import check_text
from dlc.runtime.cli import main
from dlc.runtime.sample.gan import sample_gan
from dlc.runtime.train.gan import GanTrainer
from dlc.runtime.train.gan_losses import (
    discriminator_loss,
    ema_update,
    generator_loss,
    gradient_penalty,
)

BASE = """dlc: 1
name: g
params: {latent: 4}
networks:
  gen:
    inputs: {z: [B, latent]}
    model: [dense(2)]
  dis:
    inputs: {x: [B, 2]}
    model: [dense(1)]
training:
  gan: {generator: gen, discriminator: dis, noise: z}
  optimizer: {gen: adam, dis: adam}
  data: {train: "builtin:moons(n=64)"}
"""  # lines 1-14
COND = """dlc: 1
name: g
networks:
  gen:
    inputs: {z: [B, 4], c: {shape: [B], dtype: int64}}
    model:
      e: c -> embedding(3, 2)
      y: concat(z, e) -> dense(2)
  dis:
    inputs: {x: [B, 2], c: {shape: [B], dtype: int64}}
    model:
      e: c -> embedding(3, 2)
      y: concat(x, e) -> dense(1)
training:
  gan: {generator: gen, discriminator: dis, noise: z, condition: c}
  optimizer: {gen: adam, dis: adam}
"""
SINGLE = "dlc: 1\nname: s\ninputs: {x: [B, 2]}\nmodel: [dense(1)]\ntraining:\n"

# (case, spec text, error class, message, "line:col" of the first diagnostic)
# fmt: off
ERRORS = [
    ("output_shape", BASE.replace("[dense(2)]", "[dense(3)]"), ElaborationError,
     "the generator's output 'y' [B, 3] does not fit the discriminator's input 'x' [B, 2]",
     "9:14"),
    ("output_rank", BASE.replace("x: [B, 2]}", "x: [B, 1, 2]}"), ElaborationError,
     "the generator's output 'y' [B, 2] does not fit the discriminator's input 'x' [B, 1, 2]",
     "9:14"),
    ("unknown_generator", BASE.replace("generator: gen,", "generator: gne,"), ElaborationError,
     "training.gan.generator names unknown network 'gne' (did you mean 'gen'?)", "12:20"),
    ("unknown_discriminator", BASE.replace("discriminator: dis,", "discriminator: critic,"),
     ElaborationError, "training.gan.discriminator names unknown network 'critic'", "12:40"),
    ("one_network", BASE.replace("discriminator: dis,", "discriminator: gen,"),
     ElaborationError, "training.gan's generator and discriminator are one network", "12:40"),
    ("missing_optimizer", BASE.replace("{gen: adam, dis: adam}", "{gen: adam}"),
     ElaborationError, "training.optimizer gives no optimizer for network 'dis'", "13:14"),
    ("optimizer_unknown_network",
     BASE.replace("{gen: adam, dis: adam}", "{gen: adam, dis: adam, dsi: adam}"),
     ElaborationError, "training.optimizer names unknown network 'dsi' (did you mean 'dis'?)",
     "13:37"),
    ("unknown_optimizer", BASE.replace("dis: adam}", "dis: adma}"), ElaborationError,
     "unknown optimizer 'adma' (did you mean 'adam'?)", "13:31"),
    ("noise_not_an_input", BASE.replace("noise: z}", "noise: w}"), ElaborationError,
     "noise 'w' is not an input of the generator 'gen'", "12:52"),
    ("not_one_logit", BASE.replace("[dense(1)]", "[dense(3)]"), ElaborationError,
     "the discriminator's output 'y' is [B, 3]: it must be one logit per example, [B] or "
     "[B, 1]", "10:12"),
    ("generator_input_unfed",
     BASE.replace("{z: [B, latent]}", "{z: [B, latent], w: [B, 2]}")
     .replace("[dense(2)]", "{y: z -> dense(2)}"), ElaborationError,
     "the generator takes input 'w', which training.gan does not feed", "6:30"),
    ("discriminator_two_inputs",
     BASE.replace("{x: [B, 2]}", "{x: [B, 2], w: [B, 2]}")
     .replace("[dense(1)]", "{y: x -> dense(1)}"), ElaborationError,
     "the discriminator 'dis' must take one example input besides the condition, not 2 "
     "(x, w)", "9:13"),
    ("condition_missing_in_one",
     COND.replace("{x: [B, 2], c: {shape: [B], dtype: int64}}", "{x: [B, 2]}")
     .replace("      e: c -> embedding(3, 2)\n      y: concat(x, e)", "      y: x"),
     ElaborationError, "condition 'c' is not an input of the discriminator 'dis'", "14:66"),
    ("condition_types_differ",
     COND.replace("{x: [B, 2], c: {shape: [B], dtype: int64}}",
                  "{x: [B, 2], c: {shape: [B], dtype: int32}}"), ElaborationError,
     "condition 'c' is int64[B] in the generator but int32[B] in the discriminator", "10:25"),
    ("top_level_model", BASE.replace("networks:", "model: [relu]\nnetworks:"),
     ElaborationError,
     "a spec with networks: has no top-level model: each network has its own", "4:1"),
    ("layer_in_a_network", BASE.replace("[dense(1)]", "[dense(1) -> rleu]"),
     ElaborationError, "unknown op or block 'rleu' (did you mean 'relu'?)", "10:25"),
    ("loss_beside_gan", BASE.replace("  data:", "  loss: mse\n  data:"), ElaborationError,
     "training.gan is the objective of a spec with networks: it takes no loss", "14:3"),
    ("gan_with_one_model",
     SINGLE + "  gan: {generator: a, discriminator: b, noise: z}\n", ElaborationError,
     "training.gan trains two networks against each other, but the spec has one model", "6:3"),
    ("per_network_optimizer_with_one_model", SINGLE + "  optimizer: {a: adam}\n",
     ElaborationError,
     "training.optimizer is a mapping network -> call, but the spec has one network", "6:14"),
    ("gan_loss_name", BASE.replace("noise: z}", "noise: z, loss: wgan}"), SchemaError,
     "training.gan.loss must be one of non_saturating, minimax, hinge, wgan_gp, not 'wgan' "
     "(did you mean 'wgan_gp'?)", "12:61"),
    ("network_without_model", BASE.replace("    model: [dense(1)]\n", ""), SchemaError,
     "missing required key 'model' in networks.dis", "9:5"),
    ("neither_model_nor_networks", "dlc: 1\nname: s\n", SchemaError,
     "missing required key 'model'", "1:1"),
]
# fmt: on


@pytest.mark.parametrize(
    ("case", "text", "kind", "message", "where"), ERRORS, ids=[c[0] for c in ERRORS]
)
def test_bad_gan_specs_are_located(case: str, text: str, kind: type, message: str,
                                   where: str) -> None:  # fmt: skip
    err = error_of(text)
    assert isinstance(err, kind), err.render()
    diag = err.diagnostics[0]
    assert diag.message == message, err.render()
    assert str(diag.loc) == f"spec.yaml:{where}", err.render()
    if diag.loc.source.line(diag.loc.line).strip():
        assert "^" in diag.render()


def test_the_cli_reports_a_bad_wiring_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(ERRORS[0][1])
    result = run_dlc("check", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"spec.yaml:9:14: error: {ERRORS[0][3]}" in result.stderr


def test_good_specs_check_each_network() -> None:
    for text in (BASE, COND):
        checked = check_text(text, "g.yaml")
        assert [n for n, _ in checked.networks] == ["gen", "dis"]
        assert checked.gan is not None and checked.gan.fake == "y" and checked.gan.data == "x"
        assert [c.graph.name for _, c in checked.networks] == ["g_gen", "g_dis"]
    assert check_text(COND, "g.yaml").gan.condition == "c"  # type: ignore[union-attr]
    # symbolic dims unify: the generator's N is the discriminator's B
    assert check_text(BASE.replace("z: [B, latent]", "z: [N, latent]"), "g.yaml").gan


def test_a_network_error_points_into_the_original_yaml() -> None:
    err = error_of(BASE.replace("[dense(2)]", "[dense(2) -> reshape([B, 3])]"))
    assert str(err.diagnostics[0].loc).startswith("spec.yaml:7:")


# ---- the losses ----------------------------------------------------------------------


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


R, F = [0.5, -1.0], [0.2, 2.0]


def test_discriminator_losses_against_hand_computation() -> None:
    r, f, s = torch.tensor(R), torch.tensor(F), 0.1
    ns = (sum(-(1 - s) * math.log(_sig(v)) - s * math.log(1 - _sig(v)) for v in R) / 2
          + sum(-math.log(1 - _sig(v)) for v in F) / 2)  # fmt: skip
    for kind in ("non_saturating", "minimax"):
        assert discriminator_loss(kind, r, f, s).item() == pytest.approx(ns, rel=1e-6)
    hinge = (max(0, 1 - R[0]) + max(0, 1 - R[1])) / 2 + (max(0, 1 + F[0]) + max(0, 1 + F[1])) / 2
    assert discriminator_loss("hinge", r, f).item() == pytest.approx(hinge, rel=1e-6)
    wgan = sum(F) / 2 - sum(R) / 2
    assert discriminator_loss("wgan_gp", r, f).item() == pytest.approx(wgan, rel=1e-6)


def test_generator_losses_against_hand_computation() -> None:
    f = torch.tensor(F).reshape(2, 1)  # [B, 1] logits read as [B]
    expected = {
        "non_saturating": sum(-math.log(_sig(v)) for v in F) / 2,
        "minimax": sum(math.log(1 - _sig(v)) for v in F) / 2,
        "hinge": -sum(F) / 2,
        "wgan_gp": -sum(F) / 2,
    }
    for kind, value in expected.items():
        assert generator_loss(kind, f).item() == pytest.approx(value, rel=1e-6), kind


def test_label_smoothing_is_one_sided() -> None:
    """Smoothing moves the real examples' target to 1 - s; the fakes' term is unchanged."""
    r, f = torch.tensor(R), torch.tensor(F)
    smoothed = discriminator_loss("non_saturating", r, f, 0.2)
    plain = discriminator_loss("non_saturating", r, f, 0.0)
    fake_term = sum(-math.log(1 - _sig(v)) for v in F) / 2
    real_term = sum(-0.8 * math.log(_sig(v)) - 0.2 * math.log(1 - _sig(v)) for v in R) / 2
    assert smoothed.item() == pytest.approx(real_term + fake_term, rel=1e-6)
    assert smoothed.item() != pytest.approx(plain.item())
    other_fakes = discriminator_loss("non_saturating", r, f + 1, 0.2) - smoothed
    assert other_fakes.item() == pytest.approx(
        discriminator_loss("non_saturating", r, f + 1, 0.0).item() - plain.item(), rel=1e-6
    )


def test_gradient_penalty_against_its_closed_form() -> None:
    """D(x) = w·Σx² has ∇D = 2w·x: the penalty by hand, with the same ε draws."""
    torch.manual_seed(0)
    real, fake, w = torch.randn(5, 3), torch.randn(5, 3), 0.7
    penalty = gradient_penalty(lambda x: w * (x**2).sum(1), real, fake,
                               torch.Generator().manual_seed(3))  # fmt: skip
    eps = torch.rand((5, 1), generator=torch.Generator().manual_seed(3))
    mixed = eps * real + (1 - eps) * fake
    by_hand = ((torch.linalg.norm(2 * w * mixed, dim=1) - 1) ** 2).mean()
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-5)
    # and its own gradient reaches the critic's weights (create_graph)
    wt = torch.tensor(0.7, requires_grad=True)
    gradient_penalty(lambda x: wt * (x**2).sum(1), real, fake,
                     torch.Generator().manual_seed(3)).backward()  # fmt: skip
    assert wt.grad is not None and wt.grad.abs() > 0


def test_ema_update() -> None:
    avg, model = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        avg.weight.copy_(torch.tensor([1.0, 2.0]))
        model.weight.copy_(torch.tensor([3.0, 4.0]))
        model.running_mean.copy_(torch.tensor([5.0, 6.0]))
    ema_update(avg, model, 0.9)
    assert torch.allclose(avg.weight, torch.tensor([0.9 * 1 + 0.1 * 3, 0.9 * 2 + 0.1 * 4]))
    assert torch.equal(avg.running_mean, torch.tensor([5.0, 6.0]))  # buffers copied


# ---- the steps -----------------------------------------------------------------------


def _trainer(text: str = BASE, run_dir: Path | None = None) -> GanTrainer:
    return GanTrainer(check_text(text, "g.yaml"), ROOT / "g.yaml", run_dir, device="cpu",
                      quiet=True)  # fmt: skip


def _built(text: str = BASE) -> GanTrainer:
    from dlc.runtime.train.feeds import Split

    t = _trainer(text)
    t.build(Split({"x": torch.randn(16, 2)}, {}, 16))
    return t


def _params(m: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def _grads(m: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in m.parameters()]


def _same(a: list, b: list) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(a, b, strict=True))  # fmt: skip


@pytest.mark.parametrize("loss", ["non_saturating", "minimax", "hinge", "wgan_gp"])
def test_d_step_leaves_g_alone_and_g_step_leaves_d_alone(loss: str) -> None:
    t = _built(BASE.replace("noise: z}", f"noise: z, loss: {loss}}}"))
    t.g_step(8, None)  # G has gradients now: D's step must not touch them
    g_before, g_grads, d_before = _params(t.g), _grads(t.g), _params(t.d)
    t.d_step(torch.randn(8, 2), None)
    assert _same(_params(t.g), g_before) and _same(_grads(t.g), g_grads)  # detached fake
    assert not _same(_params(t.d), d_before)
    d_before, d_grads, g_before = _params(t.d), _grads(t.d), _params(t.g)
    t.g_step(8, None)
    assert _same(_params(t.d), d_before) and _same(_grads(t.d), d_grads)  # D frozen
    assert not _same(_params(t.g), g_before)
    assert all(p.requires_grad for p in t.d.parameters())  # unfrozen after the step


def test_the_loop_runs_discriminator_steps_per_generator_step() -> None:
    t = _trainer(BASE.replace("noise: z}", "noise: z, discriminator_steps: 2}")
                 .replace("  data:", "  batch_size: 8\n  epochs: 1\n  data:"))  # fmt: skip
    order: list[str] = []
    d_step, g_step = t.d_step, t.g_step
    t.d_step = lambda *a: (order.append("D"), d_step(*a))[1]  # type: ignore[method-assign]
    t.g_step = lambda *a: (order.append("G"), g_step(*a))[1]  # type: ignore[method-assign]
    result = t.run()
    assert order == ["D", "D", "G"] * 4  # 64 examples, batches of 8
    assert set(result["train"]) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_the_same_seed_gives_the_same_run() -> None:
    text = BASE.replace("noise: z}", "noise: z, ema: 0.9}").replace(
        "  data:", "  batch_size: 16\n  epochs: 2\n  seed: 3\n  data:"
    )
    runs = [_trainer(text) for _ in range(2)]
    results = [t.run() for t in runs]
    assert results[0]["train"] == results[1]["train"]
    a, b = (t.exported_generator().state_dict() for t in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = _trainer(text.replace("seed: 3", "seed: 4"))
    assert other.run()["train"] != results[0]["train"]


# ---- the run folder, the ONNX files, the sampler ---------------------------------------


@pytest.mark.parametrize("spec", ["moons_gan", "dcgan_digits", "cgan_digits"])
def test_dlc_train_writes_both_networks_and_the_sample_grids(tmp_path: Path, spec: str) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dlc.runtime.cli", "train", f"specs/{spec}.yaml", "--out",
         str(out), "--quiet", "--set", "training.epochs=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "DLC111" not in result.stderr
    for name in ("generator.onnx", "discriminator.onnx", "metrics.jsonl", "curves.png",
                 "report.md", "samples/epoch_001.png"):  # fmt: skip
        assert (out / name).is_file(), name
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(row)
    for role in ("generator", "discriminator"):
        model = onnx.load(out / f"{role}.onnx")
        onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in onnx.load(out / "generator.onnx").metadata_props}
    sampler = json.loads(meta["dlc.sampler"])
    assert sampler["kind"] == "gan" and sampler["noise"] == "z"
    assert sampler["condition"] == ("y" if spec == "cgan_digits" else None)
    assert sampler["classes"] == (10 if spec == "cgan_digits" else None)


def test_generator_onnx_agrees_with_the_torch_generator(tmp_path: Path) -> None:
    text = """dlc: 1
name: g
networks:
  gen:
    inputs: {z: [B, 4], y: {shape: [B], dtype: int64}}
    model:
      e: y -> embedding(2, 3)
      h: concat(z, e) -> dense(8) -> batchnorm -> relu -> dense(2)
    outputs: {x: h}
  dis:
    inputs: {x: [B, 2], y: {shape: [B], dtype: int64}}
    model:
      e: y -> embedding(2, 3)
      logit: concat(x, e) -> dense(1)
    outputs: {logit: logit}
training:
  gan: {generator: gen, discriminator: dis, noise: z, condition: y, ema: 0.5}
  optimizer: {gen: adam, dis: adam}
  batch_size: 16
  epochs: 1
  data: {train: "builtin:moons(n=48)"}
"""
    t = _trainer(text, tmp_path)
    t.run()
    session = ort.InferenceSession(str(tmp_path / "generator.onnx"),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    labels = np.array([0, 1, 1, 0, 1])
    got = sample_gan(session, 5, seed=7, labels=labels)
    z = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float32)
    g = t.exported_generator().eval()
    with torch.no_grad():
        want = g(z=torch.from_numpy(z), y=torch.from_numpy(labels))
    want = want if torch.is_tensor(want) else want["x"]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
    # the exported weights are the average's (ema is set), not the last step's
    assert t.g_ema is not None and not _same(_params(t.g_ema), _params(t.g))
    with torch.no_grad():
        last = t.g.eval()(z=torch.from_numpy(z), y=torch.from_numpy(labels))
    assert not np.allclose(got, (last if torch.is_tensor(last) else last["x"]).numpy())
    assert np.array_equal(sample_gan(session, 5, seed=7, labels=labels), got)
    assert not np.array_equal(sample_gan(session, 5, seed=8, labels=labels), got)
    assert sample_gan(session, 4, seed=0).shape == (4, 2)  # labels 0, 1, 0, 1 by default
    with pytest.raises(UsageError, match="labels must be in 0..1"):
        sample_gan(session, 2, seed=0, labels=np.array([0, 2]))


def test_sample_gan_refuses_a_model_that_is_not_a_generator(tmp_path: Path) -> None:
    assert main(["compile", str(ROOT / "specs/moons_gan.yaml"), "-o", f"{tmp_path}/"]) == 0
    session = ort.InferenceSession(str(tmp_path / "generator.onnx"),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    with pytest.raises(UsageError, match="not a GAN's generator"):
        sample_gan(session, 2, seed=0)


@pytest.mark.parametrize("spec", ["dcgan_digits", "cgan_digits"])
def test_dlc_compile_verifies_each_network(tmp_path: Path, spec: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["compile", str(ROOT / f"specs/{spec}.yaml"), "-o", str(tmp_path / "m.onnx"),
                 "--verify"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for role in ("generator", "discriminator"):
        path = tmp_path / f"m.{role}.onnx"
        onnx.checker.check_model(onnx.load(path), full_check=True)
        assert f"wrote {path}" in out
    assert out.count("torch and onnxruntime agree") == 2


def test_train_refuses_nproc_for_a_gan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(ROOT / "specs/moons_gan.yaml"), "--nproc", "2"]) == 1
    assert "a spec with networks: trains in one process" in capsys.readouterr().err


def test_resume_refuses_a_gan_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "generator.onnx").write_bytes(b"")  # a GAN run folder: no last.pt in it
    assert main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path} is a GAN run: it keeps no checkpoints, so it cannot be resumed" in err


@pytest.mark.slow
def test_the_trained_gans_sample_well(tmp_path: Path) -> None:
    """The REPRODUCTION.md figures (tests/reproduce_gan.py), with margins: the moons GAN's
    samples lie on the moons, far nearer than matched Gaussian noise; the DCGAN's digits
    cover all ten classes, read with more confidence than noise; the cGAN draws the digit
    it is asked for."""
    sys.path.insert(0, str(ROOT / "tests"))
    import reproduce_gan

    figures = reproduce_gan.run_all(["moons_gan", "dcgan_digits", "cgan_digits"], tmp_path)
    moons = figures["moons_gan"]
    assert moons["samples"]["nearest_neighbour"] < 0.06
    assert moons["samples"]["mmd_rbf"] < moons["gaussian_noise"]["mmd_rbf"] / 5
    for spec in ("dcgan_digits", "cgan_digits"):
        got = figures[spec]
        assert got["samples"]["classes"] == 10
        assert got["samples"]["confidence"] > got["gaussian_noise"]["confidence"] + 0.1
    assert figures["cgan_digits"]["samples"]["label_agreement"] > 0.9
