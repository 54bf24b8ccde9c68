"""Benchmark (not a test): float vs int8 (`dlc quantize`) on trained runs of the layer
library's examples: test accuracy (transformer_lm: per token), onnxruntime latency at
batch 1 and 64 on one thread, and file size; then one case the gate refuses.

    python tests/bench_quantize.py [--runs DIR] [--specs digits_mlp,lenet_digits] [--rounds 31]

Each spec is trained with `dlc train` into DIR/NAME (a temporary folder by default; an
existing run there is reused), then quantized as `dlc quantize RUN` would: its own
choice of mode, the gate on the test split. Latency is the median over interleaved
rounds (float, int8, int8, float, ...) of each round's mean, in one process.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = "digits_mlp,lenet_digits,lstm_digits,transformer_lm"


def trained(spec: str, runs: Path) -> Path:
    from dlc.runtime.cli import main

    run = runs / spec
    if (run / "model.onnx").is_file():
        return run
    code = main(["train", str(ROOT / "specs" / f"{spec}.yaml"), "--out", str(run), "-q",
                 "--set", "training.checkpoint_every=0"])  # fmt: skip
    if code != 0:
        sys.exit(f"dlc train {spec} failed ({code})")
    return run


def row(spec: str, run: Path, out: Path, rounds: int) -> str:
    from dlc.runtime.quantize import Options, Refused, quantize

    try:
        _, r = quantize(Options(str(run), str(out / f"{spec}.int8.onnx"), rounds=rounds))
    except Refused as e:
        r = e.report
    assert r.before is not None and r.after is not None
    (f1, q1), (f64, q64) = r.latency[1], r.latency[64]
    f, q = r.sizes
    return (f"| {spec} | {r.mode} | {100 * r.before:.2f} | {100 * r.after:.2f} | "
            f"{1e3 * f1:.3f} | {1e3 * q1:.3f} ({f1 / q1:.2f}x) | {1e3 * f64:.3f} | "
            f"{1e3 * q64:.3f} ({f64 / q64:.2f}x) | {f / 1024:.1f} | {q / 1024:.1f} "
            f"({q / f:.2f}x) |")  # fmt: skip


def refusal(specs: list[str], runs: Path, out: Path) -> str:
    """The first spec whose int8 model the gate refuses at `--max-drop 0.01`, quantized
    static, calibrated on one example, per-tensor: ranges that clip the test data."""
    from dlc.runtime.quantize import Options, Refused, quantize

    dst = out / "refused.int8.onnx"
    for spec in specs:
        opts = Options(str(runs / spec), str(dst), static=True, calibrate=1, per_channel=False,
                       max_drop=0.01, batches=(), rounds=1)  # fmt: skip
        try:
            quantize(opts)
        except Refused as e:
            assert not dst.exists()
            return f"{spec}: refused (exit 1, no file written): {e.message}"
        dst.unlink()
    return "none refused"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, help="where the runs are (or go); default: a "
                        "temporary folder")  # fmt: skip
    parser.add_argument("--specs", default=SPECS)
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="dlc-bench-quantize-") as tmp:
        runs = args.runs or Path(tmp) / "runs"
        out = Path(tmp)
        import onnxruntime

        print(f"onnxruntime {onnxruntime.__version__}, {platform.processor() or platform.machine()}"
              f", {os.cpu_count()} cpus; latency in ms, 1 intra-op thread")  # fmt: skip
        print()
        print("| model | mode | acc float % | acc int8 % | b1 float | b1 int8 | b64 float | "
              "b64 int8 | KiB float | KiB int8 |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        specs = [s.strip() for s in args.specs.split(",") if s.strip()]
        for spec in specs:
            print(row(spec, trained(spec, runs), out, args.rounds), flush=True)
        print()
        print(
            "gate, --static --calibrate 1 --no-per-channel --max-drop 0.01: "
            + refusal(specs, runs, out)
        )


if __name__ == "__main__":
    main()
