"""Issue 13's diffusion figures, for REPRODUCTION.md: how close the diffusion models'
samples come to the data, beside the same figures for Gaussian noise.

    python tests/reproduce_diffusion.py                  # both (~10 min on 2 busy cores)
    python tests/reproduce_diffusion.py moons --out DIR  # one; samples and plots in DIR

- moons: `dlc train specs/diffusion_moons.yaml` (seed 0), 1,000 samples (seed 0) by DDPM
  (all 1,000 steps) and by DDIM (50 steps, eta 0), against a held-out
  builtin:moons(n=1000, noise=0.05, seed=1): the squared MMD (Gaussian kernel, median
  bandwidth) and the mean nearest-neighbour distance (runtime/sample/quality.py); beside
  them Gaussian noise with the data's mean and std, and with its covariance (seed 0),
  and a second true sample (seed=2), the floor.
- digits: `dlc train specs/diffusion_digits.yaml` (seed 0), 1,000 samples each way,
  judged by `dlc train specs/digits_mlp.yaml`'s model.onnx (quality.judge: its mean
  confidence and how many of the ten classes it sees); beside them the real digits and
  Gaussian noise with the pixels' mean and standard deviation.

Every run trains through the real CLI entry point, as a user would, and samples its
model.onnx on onnxruntime (runtime/sample/diffusion.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlc.runtime.cli import main
from dlc.runtime.sample.diffusion import sample_diffusion
from dlc.runtime.sample.figures import write_samples
from dlc.runtime.sample.quality import judge, mmd_rbf, nearest_neighbour
from dlc.runtime.train.data import load_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
N = 1000
METHODS = {"DDPM (1000 steps)": ("ddpm", None), "DDIM (50 steps, eta 0)": ("ddim", 50)}
HELD_OUT = "builtin:moons(n=1000, noise=0.05, seed=1)"
SECOND = "builtin:moons(n=1000, noise=0.05, seed=2)"


def train(spec: Path, out: Path) -> Path:
    """`dlc train SPEC --out OUT -q`; the run folder."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", str(spec), "--out", str(out), "-q"])
    if code != 0:
        raise RuntimeError(f"dlc train {spec.name} failed:\n{err.getvalue()}")
    return out


def session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def data(source: str) -> np.ndarray:
    return np.asarray(load_source(source, base_dir=ROOT).arrays["x"], dtype=np.float64)


def draw(model: Any, out: Path, name: str, reference: np.ndarray | None) -> dict[str, Any]:
    """1,000 samples each way (seed 0), saved as .npy and a plot; the seconds taken."""
    samples: dict[str, Any] = {}
    for label, (method, steps) in METHODS.items():
        started = time.perf_counter()
        x = sample_diffusion(model, N, 0, method=method, steps=steps)
        seconds = time.perf_counter() - started
        np.save(out / f"{name}_{method}.npy", x)
        write_samples(x[:100] if reference is None else x, out / f"{name}_{method}.png",
                      title=f"{name}: {label}", reference=reference)  # fmt: skip
        samples[label] = (x, seconds)
    return samples


def moons(out: Path) -> dict[str, Any]:
    run = train(SPECS / "diffusion_moons.yaml", out / "diffusion_moons")
    held_out = data(HELD_OUT)
    rows: dict[str, Any] = {}
    for label, (x, seconds) in draw(session(run / "model.onnx"), out, "moons", held_out).items():
        rows[label] = {"mmd": mmd_rbf(x, held_out), "nn": nearest_neighbour(x, held_out),
                       "seconds": round(seconds, 1)}  # fmt: skip
    train_x = data("builtin:moons(n=8000, noise=0.05)")
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((N, 2)) * train_x.std(0) + train_x.mean(0)
    rows["Gaussian noise (data's mean, std)"] = {
        "mmd": mmd_rbf(noise, held_out), "nn": nearest_neighbour(noise, held_out)}  # fmt: skip
    noise = rng.multivariate_normal(train_x.mean(0), np.cov(train_x.T), N)
    rows["Gaussian noise (data's mean, covariance)"] = {
        "mmd": mmd_rbf(noise, held_out), "nn": nearest_neighbour(noise, held_out)}  # fmt: skip
    second = data(SECOND)
    rows["another true sample (seed 2)"] = {
        "mmd": mmd_rbf(second, held_out), "nn": nearest_neighbour(second, held_out)}  # fmt: skip
    report = json.loads((run / "report.json").read_text())
    return {"rows": rows, "train_seconds": report.get("seconds"), "run": str(run)}


def digits(out: Path) -> dict[str, Any]:
    classifier = train(SPECS / "digits_mlp.yaml", out / "digits_mlp") / "model.onnx"
    run = train(SPECS / "diffusion_digits.yaml", out / "diffusion_digits")
    rows: dict[str, Any] = {}
    for label, (x, seconds) in draw(session(run / "model.onnx"), out, "digits", None).items():
        rows[label] = {**judge(x, classifier), "seconds": round(seconds, 1)}
    real = data("builtin:digits")
    rows["the real digits (all 1,797)"] = judge(real, classifier)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((N, real.shape[1])) * real.std(0) + real.mean(0)
    rows["Gaussian noise (pixels' mean, std)"] = judge(noise, classifier)
    report = json.loads((run / "report.json").read_text())
    return {"rows": rows, "train_seconds": report.get("seconds"), "run": str(run)}


def table(name: str, result: dict[str, Any]) -> str:
    rows = result["rows"]
    if name == "moons":
        lines = ["| samples | MMD² vs held-out | nearest neighbour | sampling s |",
                 "|---|---|---|---|"]  # fmt: skip
        for label, r in rows.items():
            lines.append(f"| {label} | {r['mmd']:.4f} | {r['nn']:.4f} | {r.get('seconds', '')} |")
    else:
        lines = ["| samples | classifier confidence | classes present | per class | sampling s |",
                 "|---|---|---|---|---|"]  # fmt: skip
        for label, r in rows.items():
            counts = " ".join(str(c) for c in r["counts"])
            lines.append(f"| {label} | {r['confidence']:.3f} | {r['classes']} | {counts} | "
                         f"{r.get('seconds', '')} |")  # fmt: skip
    return "\n".join(lines) + f"\n\n(training: {result['train_seconds']:.0f} s)"


EXPERIMENTS = {"moons": moons, "digits": digits}


def run(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", help=f"of {', '.join(EXPERIMENTS)} (all)")
    parser.add_argument("--out", type=Path, help="where the runs, samples and plots go")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="dlc-diffusion-"))
    out.mkdir(parents=True, exist_ok=True)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment {unknown[0]}: use {', '.join(EXPERIMENTS)}")
    results = {}
    for name in args.experiments or list(EXPERIMENTS):
        results[name] = EXPERIMENTS[name](out)
        print(f"\n## diffusion {name}\n\n{table(name, results[name])}", flush=True)
    (out / "diffusion.json").write_text(json.dumps(results, indent=2))
    print(f"\nruns, samples and plots in {out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    run()
