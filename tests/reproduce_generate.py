"""The translators' exact-match rate on their test split, greedy and beam search (K = 4):
specs/seq2seq_reverse.yaml (LSTM encoder-decoder) and specs/translator.yaml (transformer
encoder-decoder), both on builtin:reverse.

    python tests/reproduce_generate.py               # train both, then decode
    python tests/reproduce_generate.py --run translator=runs/translator/2026...  # reuse runs

Each spec trains through the real CLI (`dlc train SPEC --out DIR`); its test split is the
one `dlc train` holds out (runtime/train/feeds.py: `split(data, test_split, seed=0)`); each
test source is decoded as `dlc generate RUN --source TOKENS [--beam 4] [--no-cache]`
decodes it (the same functions, in this process: the start token 0 as the prompt, as many
new tokens as the source has; the translator with and without its key-value cache, the
LSTM without, as it has none), and a sequence counts when every token equals the target.
The per-token accuracy `dlc train` reports uses teacher forcing; this is the model alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlc.compiler.pipeline import check_file
from dlc.runtime.cli import main
from dlc.runtime.generate.cache import cached_session
from dlc.runtime.generate.decode import Stepper, Strategy, generate
from dlc.runtime.generate.model import CachedStepper, FullStepper, open_model
from dlc.runtime.train.data import load_source, split

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("seq2seq_reverse", "translator")
STRATEGIES = {"greedy": Strategy("greedy"), "beam K=4": Strategy("beam", beams=4)}


def train(name: str) -> Path:
    run = Path(tempfile.mkdtemp(prefix="dlc-generate-")) / name
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", str(ROOT / "specs" / f"{name}.yaml"), "--out", str(run), "-q"])
    if code != 0:
        raise RuntimeError(f"dlc train {name} failed:\n{err.getvalue()}")
    return run


def test_split(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sources, targets) of the run's test split."""
    checked = check_file(run / "spec.yaml")
    plan = checked.training
    assert plan is not None
    data = plan.options.data
    assert data.train is not None and data.test_split is not None
    ds = load_source(data.train, base_dir=run, target=data.target, options=dict(data.options))
    _, test = split(ds, data.test_split, seed=0)
    return test.arrays["x"], test.arrays["y"]


def exact_match(run: Path, strategy: Strategy, cache: bool) -> tuple[float, int, float, bool]:
    """(the fraction of test sequences decoded exactly, their number, seconds, whether
    the key-value cache was used)."""
    session, info = open_model(run / "model.onnx")
    sources, targets = test_split(run)
    decoder = cached_session(run, info, warn=False) if cache else None
    hits, prompt = 0, (info.start,)
    start = time.perf_counter()
    for source, target in zip(sources, targets, strict=True):
        if decoder is not None:
            stepper: Stepper = CachedStepper(decoder, info, prompt, tuple(source))
        else:
            stepper = FullStepper(session, info, prompt, tuple(source))
        hits += generate(stepper, strategy, len(source)).tokens == target.tolist()
    return hits / len(sources), len(sources), time.perf_counter() - start, decoder is not None


def main_() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", default=[], metavar="SPEC=RUN",
                   help="use this run folder instead of training")  # fmt: skip
    args = p.parse_args()
    given = dict(item.split("=", 1) for item in args.run)
    print(f"{'spec':<16} {'strategy':<9} {'exact match':>11} {'of':>5} {'cache':>5} "
          f"{'seconds':>8}")  # fmt: skip
    for name in SPECS:
        run = Path(given[name]) if name in given else train(name)
        for label, strategy in STRATEGIES.items():
            for cache in (False, True):
                rate, n, seconds, cached = exact_match(run, strategy, cache)
                if cache and not cached:
                    continue  # no cache to keep (the LSTM): the row above says it all
                print(f"{name:<16} {label:<9} {rate:>11.4f} {n:>5} {'yes' if cached else 'no':>5} "
                      f"{seconds:>8.1f}")  # fmt: skip
        example = " ".join(map(str, test_split(run)[0][0]))
        print(f"  e.g. dlc generate {run} --source '{example}' --beam 4", file=sys.stderr)


if __name__ == "__main__":
    main_()
