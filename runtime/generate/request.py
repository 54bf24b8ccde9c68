"""One generation request and the rules it must follow, shared by `dlc generate` and the
server's generate endpoint, so both refuse the same inputs with the same words.

`make_strategy` checks the choice of strategy (beam search with a temperature, top-p
outside (0, 1], ...); `validate` checks a request against a model (`ModelInfo`): every
token inside the vocab of the input it goes to, the prompt and the new tokens within
the model's positions, a source exactly when the model is an encoder-decoder. Each
failure is one `GenerateError` whose message names the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...compiler.errors import DlcError
from .decode import Strategy

if TYPE_CHECKING:
    from .model import ModelInfo

DEFAULT_MAX_NEW = 16
STRATEGIES = ("greedy", "sample", "beam")


class GenerateError(DlcError):
    phase = "generate"


@dataclass(frozen=True)
class Request:
    prompt: tuple[int, ...] | None  # None: the start token for an encoder-decoder
    source: tuple[int, ...] | None = None
    max_new: int | None = None  # None: the source's length, else 16, within the positions
    strategy: Strategy = Strategy()
    stop: int | None = None


def make_strategy(
    kind: str | None = None,
    *,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    beams: int | None = None,
    length_penalty: float | None = None,
    seed: int | None = None,
) -> Strategy:
    """The strategy the options ask for; `kind` None means: sampling when a sampling
    option is given, beam search when `beams` is, greedy otherwise."""
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    given = [k for k, v in sampling.items() if v is not None]
    if kind is None:
        kind = "beam" if beams is not None else "sample" if given else "greedy"
    if kind not in STRATEGIES:
        raise GenerateError(f"unknown strategy {kind!r}: use one of {', '.join(STRATEGIES)}")
    if kind != "sample" and given:
        raise GenerateError(
            f"{kind} decoding takes no {', '.join(given)}: those are sampling options",
            hint="sample (--temperature T [--top-k K] [--top-p P]) or drop them",
        )
    if kind != "beam" and beams is not None:
        raise GenerateError(f"{kind} decoding takes no beams: that is beam search's option")
    if kind != "beam" and length_penalty is not None:
        raise GenerateError(f"{kind} decoding takes no length_penalty: it is beam search's")
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise GenerateError(f"temperature must be > 0, got {temperature:g}",
                            hint="greedy decoding is the limit T -> 0")  # fmt: skip
    if top_k is not None and top_k < 1:
        raise GenerateError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise GenerateError(f"top_p must be in (0, 1], got {top_p:g}")
    if beams is not None and beams < 1:
        raise GenerateError(f"the beam width must be at least 1, got {beams}")
    if length_penalty is not None and not (math.isfinite(length_penalty) and length_penalty >= 0):
        raise GenerateError(f"length_penalty must be >= 0, got {length_penalty:g}")
    return Strategy(
        kind,
        temperature=1.0 if temperature is None else temperature,
        top_k=top_k,
        top_p=top_p,
        beams=beams or 1,
        length_penalty=1.0 if length_penalty is None else length_penalty,
        seed=seed or 0,
    )


def parse_tokens(text: str, what: str) -> tuple[int, ...]:
    """'3 5 7' or '3,5,7' as token ids."""
    parts = text.replace(",", " ").split()
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        bad = next(p for p in parts if not p.lstrip("-").isdigit())
        raise GenerateError(
            f"{what} must be token ids (integers), got {bad!r}",
            hint=f"e.g. {what} '3 5 7'",
        ) from None


def validate(info: ModelInfo, req: Request) -> tuple[tuple[int, ...], int]:
    """The prompt to feed (the start token for an encoder-decoder without one) and the
    number of new tokens, or a GenerateError saying what does not fit the model."""
    if info.source is None and req.source is not None:
        raise GenerateError("the model is a language model with one token input: it takes "
                            "no source", hint="give only a prompt")  # fmt: skip
    if info.source is not None and req.source is None:
        raise GenerateError(
            f"the model is an encoder-decoder: give the source tokens for its input "
            f"{info.source.name!r}",
            hint="--source '3 1 4' (the server: \"source\": [3, 1, 4])",
        )
    if req.source is not None and info.source is not None:
        if not req.source:
            raise GenerateError("the source is empty: give at least one token")
        _in_vocab(req.source, info.source.vocab, "source")
        if info.source_positions is not None and len(req.source) > info.source_positions:
            raise GenerateError(
                f"the source has {len(req.source)} tokens; the model's encoder has "
                f"{info.source_positions} positions",
                hint=f"shorten it to {info.source_positions} tokens or fewer",
            )
    prompt = req.prompt
    if prompt is None or (info.source is not None and not prompt):
        if info.source is None:
            raise GenerateError("give a prompt: at least one token")
        prompt = (info.start,)
    if not prompt:
        raise GenerateError("the prompt is empty: give at least one token")
    _in_vocab(prompt, info.tokens.vocab, "prompt")
    if req.stop is not None:
        _in_vocab((req.stop,), info.vocab, "stop")
    # the model reads the prompt and every new token but the last: prompt + new - 1
    room = None if info.max_positions is None else info.max_positions - len(prompt) + 1
    if room is not None and room < 1:
        raise GenerateError(
            f"the prompt has {len(prompt)} tokens; the model has {info.max_positions} positions",
            hint=f"shorten it to {info.max_positions} tokens or fewer",
        )
    max_new = req.max_new
    if max_new is None:
        default = len(req.source) if req.source is not None else DEFAULT_MAX_NEW
        max_new = default if room is None else min(default, room)
    if max_new < 0:
        raise GenerateError(f"max_new must be >= 0, got {max_new}")
    if room is not None and max_new > room:
        raise GenerateError(
            f"{_count(len(prompt), 'prompt token')} and {_count(max_new, 'new token')} need "
            f"{len(prompt) + max_new - 1} positions (the last new token is not read); the "
            f"model has {info.max_positions}",
            hint=f"ask for at most {room} new tokens",
        )
    return prompt, max_new


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _in_vocab(tokens: Sequence[int], vocab: int | None, what: str) -> None:
    if vocab is None:
        return
    bad = [t for t in tokens if not 0 <= t < vocab]
    if bad:
        raise GenerateError(
            f"{what} token {bad[0]} is outside the vocab: the model knows tokens 0..{vocab - 1}"
        )


# -- the server's JSON -------------------------------------------------------------------

FIELDS = ("prompt", "source", "max_new", "strategy", "temperature", "top_k", "top_p",
          "beams", "length_penalty", "seed", "stop")  # fmt: skip


def from_json(body: Any) -> Request:
    """A request from the generate endpoint's JSON object (see runtime/serve/generate.py)."""
    if not isinstance(body, Mapping):
        raise GenerateError("the request must be a JSON object")
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        raise GenerateError(f"unknown field {unknown[0]!r}: the fields are {', '.join(FIELDS)}")
    strategy = make_strategy(
        _opt(body, "strategy", str),
        temperature=_opt(body, "temperature", float),
        top_k=_opt(body, "top_k", int),
        top_p=_opt(body, "top_p", float),
        beams=_opt(body, "beams", int),
        length_penalty=_opt(body, "length_penalty", float),
        seed=_opt(body, "seed", int),
    )
    return Request(
        _tokens(body, "prompt"),
        _tokens(body, "source"),
        _opt(body, "max_new", int),
        strategy,
        _opt(body, "stop", int),
    )


def _opt(body: Mapping[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
    if not ok or isinstance(value, bool):
        names = {str: "a string", int: "an integer", float: "a number"}
        raise GenerateError(f"{key} must be {names[kind]}, got {value!r}")
    return kind(value)


def _tokens(body: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    ):
        raise GenerateError(f"{key} must be a list of token ids (integers), got {value!r}")
    return tuple(value)
