"""Benchmark (not a test): the cost of `training: {log_gradients: true}`, in one process.

    python tests/probe_cases/bench_log_gradients.py [SPEC] [--rounds 20] [--threads 1]

Builds the spec's Trainer once (data, model, optimizer: `Trainer.setup`), then times
whole training epochs (`Trainer.train_epoch`, the loop `dlc train` runs) alternately
without and with the gradient log, the order swapped every round, so both see the same
moments of a shared machine. Prints the median epoch time of each, and the median of
the per-round ratios with its interquartile range.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from dlc.compiler.pipeline import check_file
from dlc.runtime.train.gradients import GradientLog
from dlc.runtime.train.loop import Trainer
from dlc.runtime.train.progress import Progress

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "digits_mlp.yaml"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    checked = check_file(args.spec)
    trainer = Trainer(checked, Path(args.spec), None, device="cpu", quiet=True)
    run = trainer.setup()
    log = GradientLog(trainer.model, checked.graph, trainer.device)
    progress = Progress(1, run.steps_per_epoch, quiet=True, enabled=False)
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for r in range(-2, args.rounds):  # two rounds of warm-up
        got = {}
        for on in (False, True) if r % 2 == 0 else (True, False):
            trainer.grad_log = log if on else None
            start = time.perf_counter()
            trainer.train_epoch(run, 1, progress)
            got[on] = time.perf_counter() - start
            if on:
                log.epoch_values()
        if r >= 0:
            times[False].append(got[False])
            times[True].append(got[True])
            ratios.append(got[True] / got[False])
    off, on = (statistics.median(times[k]) * 1000 for k in (False, True))
    q = statistics.quantiles(ratios, n=4)
    print(f"{checked.graph.name}: {run.steps_per_epoch} steps/epoch of batch {run.batch}, "
          f"{len(log.names)} layers, {args.threads} thread(s), {args.rounds} rounds")  # fmt: skip
    print(f"epoch time: off {off:.1f} ms, on {on:.1f} ms (medians); on/off per round: "
          f"median {statistics.median(ratios):.3f} (IQR {q[0]:.3f}-{q[2]:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
