"""The course's experiments, run with `dlc train` on the specs in specs/, and what they
give; REPRODUCTION.md records a run of this script next to the course's figures.

    python tests/reproduce.py                 # all of them (a few minutes on 2 cores)
    python tests/reproduce.py xor --seeds 5   # one experiment, fewer seeds
    python tests/reproduce.py examples        # the layer library's example specs

Each experiment trains through the real CLI entry point (in this process, run folders
in a temporary directory) and reads its result from the run folder, exactly as a user
would. tests/test_reproduction.py runs the quick ones in the default suite and the
20-seed XOR behind the `slow` marker.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from dlc.runtime.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

XOR_INITS = {"uniform(-10, 10)": "uniform(-10, 10)", "N(0, 1/fan_in)": "lecun_normal"}
LINREG_RUNS = {
    "SGD": [],
    "momentum 0.6": ["--set", "momentum=0.6"],
    "Nesterov 0.8": ["--set", "momentum=0.8", "--set", "nesterov=true"],
}
COURSE_LINREG = {"SGD": (1.9882, 2.9975), "momentum 0.6": (1.9837, 2.9933),
                 "Nesterov 0.8": (1.9738, 2.9914)}  # fmt: skip


def train(spec: Path, *args: str) -> Path:
    """Train quietly into a fresh run folder; the folder."""
    run = Path(tempfile.mkdtemp(prefix="dlc-repro-")) / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", str(spec), "--out", str(run), "-q", *args])
    if code != 0:
        raise RuntimeError(f"dlc train {spec.name} {' '.join(args)} failed:\n{err.getvalue()}")
    return run


def report(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "report.json").read_text()))


def xor(seeds: int = 20) -> dict[str, dict[str, Any]]:
    """2-4-1 sigmoid net, BCE, SGD lr 0.1 momentum 0.99, 1000 full-batch epochs, biases 0.
    A run fails when the trained net misclassifies any of the four points."""
    out = {}
    for label, init in XOR_INITS.items():
        failed = []
        for seed in range(seeds):
            run = train(SPECS / "xor.yaml", "--set", f"init={init}",
                        "--set", f"training.seed={seed}")  # fmt: skip
            if report(run)["train"]["accuracy"] < 1.0:
                failed.append(seed)
        out[label] = {"failed": len(failed), "runs": seeds, "failed_seeds": failed}
    return out


def linreg() -> dict[str, tuple[float, float]]:
    """θ = (bias, weight) after 1000 full-batch iterations from (10, 5), lr 0.005."""
    out = {}
    for label, args in LINREG_RUNS.items():
        run = train(SPECS / "linreg.yaml", *args)
        w = torch.load(run / "last.pt", weights_only=True)["model"]
        out[label] = (float(w["dense.bias"][0]), float(w["dense.weight"][0, 0]))
    return out


DIGITS_RUNS = {
    "dropout": [],
    "ridge": ["--set", "p=0", "--set", "training.weight_decay=1e-4"],  # L2 instead of dropout
}


def digits(seeds: int = 1, variant: str = "dropout") -> dict[str, Any]:
    """The 64-256-128-10 MLP on the built-in digits, with dropout (the spec) or with an L2
    penalty and no dropout: test accuracy."""
    accs = []
    for seed in range(seeds):
        run = train(SPECS / "digits_mlp.yaml", *DIGITS_RUNS[variant],
                    "--set", f"training.seed={seed}")  # fmt: skip
        accs.append(report(run)["test"]["accuracy"])
    return {"test_accuracy": accs, "mean": sum(accs) / len(accs)}


EXAMPLES = ("lenet_digits", "resnet_small", "conv_autoencoder", "gru_digits", "lstm_digits",
            "bilstm_tagger", "transformer_lm", "vit_digits", "vae_digits")  # fmt: skip


def examples() -> dict[str, dict[str, Any]]:
    """The layer library's example specs, trained as they stand (seed 0): the final
    metrics of the test split, else of the validation split."""
    out = {}
    for name in EXAMPLES:
        r = report(train(SPECS / f"{name}.yaml"))
        split = "test" if r.get("test") else "val"
        out[name] = {"split": split, **r[split]}
    return out


def run_all(which: list[str], seeds: int) -> None:
    if "xor" in which:
        for label, r in xor(seeds).items():
            print(f"XOR, weights {label}: {r['failed']}/{r['runs']} runs failed "
                  f"(seeds {r['failed_seeds']})", flush=True)  # fmt: skip
    if "linreg" in which:
        for label, (b, w) in linreg().items():
            cb, cw = COURSE_LINREG[label]
            print(f"linreg, {label}: θ = ({b:.4f}, {w:.4f}); course ({cb}, {cw})", flush=True)
    if "examples" in which:
        for name, r in examples().items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in r.items() if k != "split")
            print(f"{name}: {r['split']} {shown}", flush=True)
    if "digits" in which:
        for variant in DIGITS_RUNS:
            r = digits(min(seeds, 5), variant)
            shown = ", ".join(f"{a:.4f}" for a in r["test_accuracy"])
            print(f"digits MLP with {variant}: test accuracy {shown} (mean {r['mean']:.4f})",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="*", default=["xor", "linreg", "digits", "examples"])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for XOR (digits: <= 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_all(args.which, args.seeds)
    sys.exit(0)
