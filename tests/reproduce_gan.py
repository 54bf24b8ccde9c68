"""The GANs of specs/ trained with `dlc train`, sampled with `sample_gan` and judged;
REPRODUCTION.md records a run of this script.

    python tests/reproduce_gan.py                    # dcgan_digits, cgan_digits, moons_gan
    python tests/reproduce_gan.py moons_gan --keep runs/gan   # one, keeping the run folders

Digits: 1,000 samples of the generator (seed 0) classified by a digits_mlp trained with
dlc (its model.onnx): the mean confidence (max softmax) and how many of the ten classes
appear; the same figures for 1,000 held-out real digits (the classifier's own ceiling)
and for Gaussian noise with the data's per-pixel mean and std (the floor). Moons: the
squared MMD (Gaussian kernel, median bandwidth) and the mean nearest-neighbour distance
of 1,000 samples to 1,000 held-out points of builtin:moons(noise=0.05, seed=1), beside
the same figures for N(mean, std) noise with the data's mean and std, and for another
held-out draw of the data (seed=2). Every run uses the specs' own seeds.
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
import onnxruntime as ort

from dlc.runtime.cli import main
from dlc.runtime.sample.gan import sample_gan
from dlc.runtime.sample.quality import judge, mmd_rbf, nearest_neighbour
from dlc.runtime.train.data import load_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
N = 1000


def train(spec: str, out: Path, *args: str) -> tuple[Path, float]:
    """Train quietly into `out`; the run folder and the wall time."""
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", str(SPECS / f"{spec}.yaml"), "--out", str(out), "-q", *args])
    if code != 0:
        raise RuntimeError(f"dlc train {spec} failed:\n{err.getvalue()}")
    return out, time.perf_counter() - start


def session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def digits(spec: str, root: Path) -> dict[str, Any]:
    classifier = root / "digits_mlp"
    if not (classifier / "model.onnx").exists():
        train("digits_mlp", classifier)
    run, seconds = train(spec, root / spec)
    samples = sample_gan(session(run / "generator.onnx"), N, seed=0)
    clf = session(classifier / "model.onnx")
    data = load_source("builtin:digits", base_dir=ROOT).arrays["x"].astype(np.float32)
    rng = np.random.default_rng(0)
    real = data[rng.permutation(len(data))[:N]]
    noise = rng.normal(data.mean(0), data.std(0), (N, data.shape[1])).astype(np.float32)
    agreement = {}
    if spec == "cgan_digits":  # sample_gan's labels are 0, 1, ..., 9 in turn
        probs = clf.run(None, {clf.get_inputs()[0].name: samples.reshape(N, -1)})[0]
        agreement = {"label_agreement": float((probs.argmax(1) == np.arange(N) % 10).mean())}
    return {
        "train_seconds": round(seconds, 1),
        "samples": judge(samples, clf) | agreement,
        "real_digits": judge(real, clf),
        "gaussian_noise": judge(np.clip(noise, 0, 16), clf),
    }


def moons(root: Path) -> dict[str, Any]:
    run, seconds = train("moons_gan", root / "moons_gan")
    samples = sample_gan(session(run / "generator.onnx"), N, seed=0)
    held = load_source(f"builtin:moons(n={N}, noise=0.05, seed=1)", base_dir=ROOT).arrays["x"]
    other = load_source(f"builtin:moons(n={N}, noise=0.05, seed=2)", base_dir=ROOT).arrays["x"]
    train_x = load_source("builtin:moons(n=2000, noise=0.05)", base_dir=ROOT).arrays["x"]
    rng = np.random.default_rng(0)
    noise = rng.normal(train_x.mean(0), train_x.std(0), (N, 2))

    def score(a: np.ndarray) -> dict[str, float]:
        return {"mmd_rbf": round(mmd_rbf(a, held), 4),
                "nearest_neighbour": round(nearest_neighbour(a, held), 4)}  # fmt: skip

    return {
        "train_seconds": round(seconds, 1),
        "samples": score(samples),
        "gaussian_noise": score(noise),
        "real_moons_seed2": score(other),
    }


def run_all(which: list[str], keep: Path | None) -> dict[str, Any]:
    root = keep or Path(tempfile.mkdtemp(prefix="dlc-gan-"))
    out: dict[str, Any] = {}
    for name in which:
        out[name] = moons(root) if name == "moons_gan" else digits(name, root)
        print(json.dumps({name: out[name]}), flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="*", default=["dcgan_digits", "cgan_digits", "moons_gan"])
    parser.add_argument("--keep", type=Path, help="write the run folders here")
    args = parser.parse_args()
    run_all(args.which, args.keep)
    sys.exit(0)
