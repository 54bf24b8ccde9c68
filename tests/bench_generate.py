"""Generation speed with and without the key-value cache, side by side, in one run.

    python tests/bench_generate.py                  # transformer_lm, small and wider
    python tests/bench_generate.py --repeats 5 --threads 1

A causal transformer (specs/transformer_lm.yaml with its positions raised so that
72 tokens fit, as it is and wider) and the transformer encoder-decoder (specs/
translator.yaml, likewise) are lowered twice with the same fresh weights: the full model,
which `--no-cache` reruns on the whole prefix at every step, and the cached decoder
(compiler/lower/onnx_cached.py), fed one token and the cache (the encoder-decoder's
encoder reruns on its 8-token source at every step). Each row decodes greedily from a
4-token prompt (the encoder-decoder: the start token), max-new 8, 32 and 64, on
onnxruntime (CPU, `--threads` intra-op threads); a warm-up decode runs first and the
figure is the best of `--repeats`. Both
decodes must give the same tokens (they are checked), so the rows compare like with
like. Tokens/s counts new tokens over the whole decode, the prompt's step included.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import onnxruntime as ort

from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.onnx_cached import to_onnx_cached
from dlc.compiler.pipeline import check_file
from dlc.runtime.generate.decode import Strategy, generate
from dlc.runtime.generate.model import CachedStepper, FullStepper, inspect

ROOT = Path(__file__).resolve().parent.parent
PROMPT = (3, 5, 7, 2)
SOURCE = (3, 1, 4, 1, 5, 9, 2, 6)  # the encoder-decoder's
CONFIGS = {  # name: (spec, overrides)
    "transformer_lm (dim 32, 2 layers)": ("transformer_lm", ["steps=80"]),
    "wider (dim 128, 4 layers, ff 512)": (
        "transformer_lm",
        ["steps=80", "dim=128", "layers=4", "ff=512"],
    ),
    "translator (enc-dec, source of 8)": ("translator", ["steps=80"]),
}


def sessions(spec: str, overrides: list[str], threads: int) -> tuple[object, object, object]:
    checked = check_file(ROOT / "specs" / f"{spec}.yaml", overrides)
    weights = initial_weights(checked.graph, 0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    full_model = to_onnx(checked.graph, weights)
    full = ort.InferenceSession(full_model.SerializeToString(), options, providers=providers)
    cached_model = to_onnx_cached(checked.graph, weights).SerializeToString()
    cached = ort.InferenceSession(cached_model, options, providers=providers)
    return full, cached, inspect(full, full_model.graph, Path(f"{spec}.onnx"))


def timed(make, max_new: int, repeats: int) -> tuple[float, list[int]]:
    tokens = generate(make(), Strategy(), max_new).tokens  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        generate(make(), Strategy(), max_new)
        best = min(best, time.perf_counter() - start)
    return max_new / best, tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    print(f"greedy decoding from a {len(PROMPT)}-token prompt, onnxruntime {ort.__version__} "
          f"CPU, {args.threads} thread(s), best of {args.repeats}")  # fmt: skip
    print(
        f"{'model':<36} {'max-new':>7} {'no cache tok/s':>15} {'cache tok/s':>12} {'speed-up':>9}"
    )
    for name, (spec, overrides) in CONFIGS.items():
        full, cached, info = sessions(spec, overrides, args.threads)
        prompt, source = (PROMPT, None) if info.source is None else ((0,), SOURCE)
        for max_new in (8, 32, 64):
            slow, a = timed(partial(FullStepper, full, info, prompt, source), max_new, args.repeats)
            fast, b = timed(
                partial(CachedStepper, cached, info, prompt, source), max_new, args.repeats
            )
            assert a == b, f"the cached decoder decoded {b}, the full model {a}"
            print(f"{name:<36} {max_new:>7} {slow:>15,.0f} {fast:>12,.0f} {fast / slow:>8.2f}x")


if __name__ == "__main__":
    main()
