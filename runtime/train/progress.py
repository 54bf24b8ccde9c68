"""What `dlc train` shows while it runs: a progress bar per epoch on a terminal (tqdm:
batches, loss, ETA), plain lines otherwise or with --quiet. Everything goes to stderr,
so stdout carries only the result; only rank 0 of a distributed run shows anything."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items())


class Progress:
    def __init__(
        self,
        epochs: int,
        steps: int,
        *,
        quiet: bool = False,
        enabled: bool = True,
        first: int = 1,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.epochs, self.steps, self.first = epochs, steps, first
        self.bars = enabled and not quiet and self.stream.isatty()
        # plain lines: at most ~25 per run, plus the first and the last epoch
        self.every = max(1, epochs // 25)
        self.bar: Any = None
        self.start = time.perf_counter()

    def begin_epoch(self, epoch: int) -> None:
        if self.bars:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.steps,
                desc=f"epoch {epoch}/{self.epochs}",
                unit="step",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def batch(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)

    def end_epoch(self, epoch: int, values: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.enabled:
            return
        if self.bars or epoch in (self.first, self.epochs) or epoch % self.every == 0:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / (epoch - self.first + 1) * (self.epochs - epoch)
            print(
                f"epoch {epoch}/{self.epochs}  {_fmt(values)}  ({elapsed:.1f} s, ETA {eta:.0f} s)",
                file=self.stream,
                flush=True,
            )

    def message(self, text: str) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
