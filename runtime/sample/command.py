"""`dlc sample RUN|MODEL.onnx`: draw from a trained VAE, GAN or diffusion model.

    dlc sample runs/vae_digits/20261205-101500 -n 100 -o vae.png
    dlc sample runs/diffusion_moons/... -n 1000 --method ddim --steps 50 \\
        --reference "builtin:moons(n=1000, seed=1)"
    dlc sample runs/dcgan_digits/... -n 1000 --judge runs/digits_mlp/...

It writes the samples (a grid of images, a scatter of 2-D points, or the array as .npy),
and with `--judge` a classifier's reading of them (its mean confidence, how many classes
appear), with `--reference` their distance to held-out data (MMD, nearest neighbour).
Given both, each figure stands beside the same for the reference data and for Gaussian
noise of the data's per-feature mean and spread: a classifier finds digits in noise too
(about 0.70 confidence on the digits), so a figure means something only next to these.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ...compiler.errors import UsageError
from .draw import open_sampler
from .figures import write_samples
from .quality import judge, mmd_rbf, nearest_neighbour


def load_reference(source: str) -> np.ndarray:
    """Data to compare samples with: `builtin:NAME(...)`'s x, or an .npy file."""
    if source.startswith("builtin:"):
        from ..train.datasets import call_builtin, parse_builtin

        name, args = parse_builtin(source)
        data = call_builtin(name, args)
        if "x" not in data.arrays:
            raise UsageError(f"{source} has no 'x' to compare samples with")
        return np.asarray(data.arrays["x"], dtype=np.float64)
    path = Path(source)
    if path.suffix != ".npy" or not path.is_file():
        raise UsageError(f"--reference takes builtin:NAME(...) or an existing .npy file: {source}")
    return np.asarray(np.load(path), dtype=np.float64)


def _classifier(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise UsageError(f"--judge: '{source}' is neither an ONNX model nor a run folder")
    return path


def noise_like(reference: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` rows of Gaussian noise with the reference's per-feature mean and deviation: the
    baseline any generator must beat."""
    ref = reference.reshape(len(reference), -1)
    rng = np.random.default_rng(seed + 1)
    return rng.normal(ref.mean(0), ref.std(0), size=(n, ref.shape[1])).reshape(
        n, *reference.shape[1:]
    )


def compare(samples: np.ndarray, reference: np.ndarray, seed: int) -> dict[str, float]:
    """MMD and nearest-neighbour distance of the samples and, for scale, of Gaussian noise
    with the reference's per-feature mean and standard deviation."""
    flat = samples.reshape(len(samples), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1)
    if flat.shape[1] != ref.shape[1]:
        raise UsageError(
            f"the samples have {flat.shape[1]} values per row, the reference {ref.shape[1]}"
        )
    noise = noise_like(ref, len(flat), seed)
    return {
        "mmd": mmd_rbf(flat, ref),
        "mmd_noise": mmd_rbf(noise, ref),
        "nearest_neighbour": nearest_neighbour(flat, ref),
        "nearest_neighbour_noise": nearest_neighbour(noise, ref),
    }


def sample_command(args: argparse.Namespace) -> int:
    sampler = open_sampler(args.source)
    samples = sampler.draw(
        args.n, args.seed, method=args.method, steps=args.steps, label=args.label
    )
    source = Path(args.source)
    out = Path(args.output) if args.output else (
        source / "samples.png" if source.is_dir() else source.with_suffix(".samples.png")
    )  # fmt: skip
    reference = load_reference(args.reference) if args.reference else None
    report: dict[str, Any] = {
        "model": str(sampler.path),
        "kind": sampler.kind,
        "samples": list(samples.shape),
        "seed": args.seed,
    }
    if args.judge:
        classifier = _classifier(args.judge)
        report["judge"] = judge(samples, classifier)
        if reference is not None:  # the same reading of the data and of noise, for scale
            report["judge"]["data"] = judge(reference, classifier)
            report["judge"]["noise"] = judge(noise_like(reference, len(samples), args.seed),
                                             classifier)  # fmt: skip
    if reference is not None:
        report["reference"] = {"data": args.reference, **compare(samples, reference, args.seed)}
    title = f"{sampler.path.parent.name}/{sampler.path.name}: {len(samples)} samples"
    shown = reference if reference is not None and reference.shape[1:] == (2,) else None
    report["written"] = str(write_samples(samples, out, title=title, reference=shown))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"drew {report['samples']} from {sampler.path} ({sampler.kind}, seed {args.seed})")
    if "judge" in report:
        j = report["judge"]
        for what, v in (("samples", j), ("data", j.get("data")), ("noise", j.get("noise"))):
            if v is not None:
                counts = " ".join(map(str, v["counts"]))
                print(f"judge, {what}: confidence {v['confidence']:.3f}, {v['classes']} of "
                      f"{len(v['counts'])} classes (counts {counts})")  # fmt: skip
    if "reference" in report:
        r = report["reference"]
        print(f"vs {args.reference}: mmd {r['mmd']:.4f} (noise {r['mmd_noise']:.4f}), "
              f"nearest neighbour {r['nearest_neighbour']:.4f} "
              f"(noise {r['nearest_neighbour_noise']:.4f})")  # fmt: skip
    print(f"wrote {report['written']}")
    return 0
