"""`dlc generate RUN|MODEL.onnx --prompt TOKENS ...`: decode tokens from a trained language
model or encoder-decoder on onnxruntime.

From a run folder (or its model.onnx) it runs the run's model.onnx; for a transformer
(a causal language model, or an encoder-decoder whose decoder is one) it runs the cached
decoder beside it (decoder_cached.onnx, written on first use from the run's spec and
trained weights, see cache.py) unless `--no-cache`. A model.onnx outside a run folder
runs without a cache. The options go through request.py's checks, the server's too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...compiler.errors import UsageError

if TYPE_CHECKING:  # imported when the command runs: `dlc --help` stays light
    from .decode import Result, Strategy
    from .model import ModelInfo
    from .request import Request


def add_parser(sub: Any) -> None:
    """The `generate` subcommand's arguments (runtime/cli.py calls this)."""
    help_ = "decode tokens from a language model or encoder-decoder (greedy, sampling, beam)"
    p = sub.add_parser("generate", help=help_, description=help_ + ", on onnxruntime. From a "
                       "run folder a transformer decodes with a key-value cache "
                       "(decoder_cached.onnx, written on first use).")  # fmt: skip
    p.add_argument("model", metavar="RUN|MODEL.onnx", help="a run folder of dlc train or a model")
    p.add_argument("--prompt", metavar="TOKENS", help="token ids, e.g. '3 1 4' (an "
                   "encoder-decoder: the decoder's start, default the start token 0)")  # fmt: skip
    p.add_argument("--source", metavar="TOKENS", help="an encoder-decoder's source tokens")
    p.add_argument("--max-new", type=int, metavar="N", help="new tokens (default: the "
                   "source's length, else 16; at most the model's positions)")  # fmt: skip
    p.add_argument("--greedy", action="store_true", help="the most probable token (default)")
    p.add_argument("--temperature", type=float, metavar="T", help="sample from softmax(z/T)")
    p.add_argument("--top-k", type=int, metavar="K", help="sample among the K most probable")
    p.add_argument("--top-p", type=float, metavar="P",
                   help="sample from the smallest set of tokens of probability >= P")  # fmt: skip
    p.add_argument("--beam", type=int, metavar="K", help="beam search with K beams")
    p.add_argument(
        "--length-penalty",
        type=float,
        metavar="A",
        help="beam search ranks by log p / length**A (default 1; 0: plain sum)",
    )
    p.add_argument("--seed", type=int, help="the sampling seed (default 0)")
    p.add_argument("--stop", type=int, metavar="TOKEN", help="end at this token (kept)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the whole prefix at every step")  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_generate)


def strategy_from_args(args: argparse.Namespace) -> Strategy:
    from .request import GenerateError, make_strategy

    sampling = [args.temperature, args.top_k, args.top_p]
    if args.greedy and (args.beam is not None or any(v is not None for v in sampling)):
        raise GenerateError("--greedy takes no --beam, --temperature, --top-k or --top-p")
    return make_strategy(
        "greedy" if args.greedy else None,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        beams=args.beam,
        length_penalty=args.length_penalty,
        seed=args.seed,
    )


def model_path(target: str) -> tuple[Path, Path | None]:
    """(the model, the run folder or None) of RUN|MODEL.onnx."""
    path = Path(target)
    if path.is_dir():
        if not (path / "model.onnx").is_file():
            raise UsageError(
                f"'{target}' is a folder but not a run folder: it has no model.onnx",
                hint="give a run folder of dlc train (runs/NAME/TIMESTAMP) or a MODEL.onnx",
            )
        return path / "model.onnx", path
    if not path.is_file():
        raise UsageError(f"'{target}' does not exist", hint="give a run folder or a MODEL.onnx")
    if path.suffix.lower() in (".yaml", ".yml"):
        raise UsageError(f"'{target}' is a spec: generation needs a trained model",
                         hint=f"dlc train {target}, then dlc generate RUN_FOLDER")  # fmt: skip
    if path.name == "model.onnx" and (path.parent / "spec.yaml").is_file():
        return path, path.parent  # a run's model.onnx: the run's cached decoder too
    return path, None


def cmd_generate(args: argparse.Namespace) -> int:
    from .decode import generate
    from .model import open_model
    from .request import Request, parse_tokens, validate

    strategy = strategy_from_args(args)
    req = Request(
        None if args.prompt is None else parse_tokens(args.prompt, "--prompt"),
        None if args.source is None else parse_tokens(args.source, "--source"),
        args.max_new,
        strategy,
        args.stop,
    )
    path, run = model_path(args.model)
    session, info = open_model(path)
    prompt, max_new = validate(info, req)
    stepper, cached = make_stepper(session, info, prompt, req.source, run, not args.no_cache)
    start = time.perf_counter()
    result = generate(stepper, strategy, max_new, req.stop)
    seconds = time.perf_counter() - start
    print(render(result, prompt, req, strategy.describe(), cached, seconds, args.json))
    return 0


def make_stepper(
    session: Any,
    info: ModelInfo,
    prompt: tuple[int, ...],
    source: Any,
    run: Path | None,
    use_cache: bool,
) -> tuple[Any, bool]:
    """The cached decoder's stepper where there is one to have, else the full one."""
    from .model import CachedStepper, FullStepper

    if use_cache and run is not None:
        from .cache import cached_session

        cached = cached_session(run, info)
        if cached is not None:
            return CachedStepper(cached, info, prompt, source), True
    return FullStepper(session, info, prompt, source), False


def render(
    result: Result,
    prompt: tuple[int, ...],
    req: Request,
    strategy: str,
    cached: bool,
    seconds: float,
    as_json: bool,
) -> str:
    rate = len(result.tokens) / seconds if seconds > 0 else 0.0
    if as_json:
        out = {"prompt": list(prompt), "source": None if req.source is None else list(req.source),
               "tokens": result.tokens, "score": result.score, "finished": result.finished,
               "strategy": strategy, "cache": cached, "model_calls": result.steps,
               "seconds": seconds, "tokens_per_s": rate}  # fmt: skip
        return json.dumps(out)
    lines = []
    if req.source is not None:
        lines.append(f"source:    {' '.join(map(str, req.source))}")
    lines.append(f"prompt:    {' '.join(map(str, prompt))}")
    lines.append(f"generated: {' '.join(map(str, result.tokens))}")
    how = "with the key-value cache" if cached else "recomputing the prefix"
    score = "score (log p / length**A)" if req.strategy.kind == "beam" else "log p"
    lines.append(f"{strategy}, {len(result.tokens)} tokens in {seconds * 1000:.1f} ms "
                 f"({rate:.0f} tokens/s, {how}), {score} {result.score:.4f}")  # fmt: skip
    return "\n".join(lines)
