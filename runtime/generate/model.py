"""The onnxruntime side of `dlc generate`: what a model's signature says about it
(`ModelInfo`) and the two ways of stepping it (decode.py's `Stepper`).

A model generates when its inputs are integer token ids and an output scores the vocab
at every position, [B, T, V]:

* a causal language model has one token input [B, T] (specs/transformer_lm.yaml);
* an encoder-decoder has two: the source [B, S] and the decoder's input [B, T], the
  target shifted right behind a start token (0, as builtin:reverse's y_in); the decoder
  input is the one whose position axis is the output's (a shared dim_param).

The scores are the output the model's metadata calls logits, else its
(log-)probabilities, else the first [B, T, V] float output; each is turned into
log-probabilities. A token input's vocab is the row count of the embedding table it
Gathers from, the model's positions the rows of the positional table it Slices
(positional_encoding's lowering) or a fixed T; unknown, they are not checked.

`FullStepper` runs the whole prefix at every step (any model: the LSTM encoder-decoder
recomputes its recurrence, as the cache has nothing to hold for it); `CachedStepper` feeds
a cached decoder (lower/onnx_cached.py) only the new token and its key-value cache, and
an encoder-decoder's source, whose encoder runs whole at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..metadata import read_metadata
from .decode import log_softmax
from .request import GenerateError

INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
ROLES = ("logits", "log_probabilities", "probabilities")


@dataclass(frozen=True)
class TokenInput:
    name: str
    vocab: int | None
    dtype: Any = np.int64


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    tokens: TokenInput  # the decoder's (or the language model's) token input
    source: TokenInput | None  # an encoder-decoder's source
    output: str
    role: str  # "logits" | "log_probabilities" | "probabilities"
    vocab: int
    max_positions: int | None
    source_positions: int | None = None
    start: int = 0


def open_model(path: str | Path) -> tuple[Any, ModelInfo]:
    """An onnxruntime session of the model and what it is, or a GenerateError saying why
    it cannot generate."""
    import onnx

    from ..predict import open_session

    path = Path(path)
    session = open_session(path)
    graph = onnx.load(str(path), load_external_data=False).graph
    return session, inspect(session, graph, path)


def inspect(session: Any, graph: Any, path: Path) -> ModelInfo:
    inputs = session.get_inputs()
    ints = [i for i in inputs if i.type in INT_TYPES]
    other = [i.name for i in inputs if i.type not in INT_TYPES]
    listed = ", ".join(f"{i.name} {i.type}" for i in inputs)
    if not ints:
        raise GenerateError(
            f"'{path}' has no integer token input (its inputs: {listed})",
            hint="dlc generate decodes language models and encoder-decoders over token ids",
        )
    if other or len(ints) > 2 or any(len(i.shape) != 2 for i in ints):
        raise GenerateError(
            f"'{path}' is not a language model or encoder-decoder over token ids [B, T] "
            f"(its inputs: {listed})",
            hint="generation needs one token input [B, T], or a source and a decoder input",
        )
    output, role = _scores(session, path)
    out_shape = next(o.shape for o in session.get_outputs() if o.name == output)
    vocab = out_shape[2]
    tables = _gather_tables(graph)
    if len(ints) == 1:
        decoder, source = ints[0], None
    else:
        steps = out_shape[1]
        matching = [i for i in ints if i.shape[1] == steps]
        decoder = matching[0] if len(matching) == 1 else ints[1]
        source = next(i for i in ints if i is not decoder)
    return ModelInfo(
        path,
        TokenInput(decoder.name, tables.get(decoder.name, vocab), INT_TYPES[decoder.type]),
        None if source is None else
        TokenInput(source.name, tables.get(source.name), INT_TYPES[source.type]),
        output, role, vocab, _positions(graph, decoder),
        None if source is None else _positions(graph, source),
    )  # fmt: skip


def _scores(session: Any, path: Path) -> tuple[str, str]:
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    roles = meta.get("outputs")
    roles = roles if isinstance(roles, dict) else {}
    candidates = [
        o.name
        for o in session.get_outputs()
        if len(o.shape) == 3 and isinstance(o.shape[2], int) and o.type == "tensor(float)"
    ]
    if not candidates:
        shown = ", ".join(f"{o.name} {o.shape}" for o in session.get_outputs())
        raise GenerateError(
            f"'{path}' has no output that scores a vocab at each position, [B, T, V] "
            f"(its outputs: {shown})"
        )
    for role in ROLES:
        named = [c for c in candidates if roles.get(c) == role]
        if named:
            return named[0], role
    return candidates[0], "logits"


def _gather_tables(graph: Any) -> dict[str, int]:
    """Graph input -> the rows of the initializer it Gathers from (an embedding)."""
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    out: dict[str, int] = {}
    for n in graph.node:
        if n.op_type == "Gather" and len(n.input) == 2 and n.input[0] in shapes:
            out.setdefault(n.input[1], shapes[n.input[0]][0])
    return out


def _positions(graph: Any, token_input: Any) -> int | None:
    """How many positions an input has: its fixed T, else the fewest rows of the
    positional tables (learned weight or sinusoid constant) that positional_encoding's
    lowering Slices to T (`{node}.__rows`) and Adds to a value computed from the input."""
    if isinstance(token_input.shape[1], int):
        return int(token_input.shape[1])
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    producer = {out: n for n in graph.node for out in n.output}
    readers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    rows = []
    for n in graph.node:
        if n.op_type != "Slice" or "__rows" not in n.output[0] or n.input[0] not in shapes:
            continue
        for add in (m for m in readers.get(n.output[0], []) if m.op_type == "Add"):
            other = [i for i in add.input if i != n.output[0]]
            if other and token_input.name in _ancestors(other[0], producer):
                rows.append(shapes[n.input[0]][0])
    return min(rows) if rows else None


def _ancestors(value: str, producer: dict[str, Any]) -> set[str]:
    seen, stack = set(), [value]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            node = producer.get(v)
            stack.extend(node.input if node is not None else ())
    return seen


def _run(session: Any, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        return list(session.run(outputs, feeds))
    except Exception as e:  # noqa: BLE001 - onnxruntime's own words, not a traceback
        raise GenerateError(f"onnxruntime failed: {e}") from None


def to_logp(scores: np.ndarray, role: str) -> np.ndarray:
    scores = scores.astype(np.float64)
    if role == "probabilities":
        with np.errstate(divide="ignore"):
            return np.log(scores)
    return log_softmax(scores)


class _Stepper:
    """What both steppers hold: the session, the model's roles, the prompt as one row and
    an encoder-decoder's source as one row (repeated per hypothesis at each run)."""

    def __init__(
        self, session: Any, info: ModelInfo, prompt: tuple[int, ...], source: Any = None
    ) -> None:
        self.session, self.info = session, info
        self.prompt = np.asarray(prompt, dtype=info.tokens.dtype)[None]
        self.source = None
        if info.source is not None:
            self.source = np.asarray(source, dtype=info.source.dtype)[None]


class FullStepper(_Stepper):
    """Runs the model on the whole prefix at every step: no state but the tokens."""

    def __init__(
        self, session: Any, info: ModelInfo, prompt: tuple[int, ...], source: Any = None
    ) -> None:
        super().__init__(session, info, prompt, source)
        self.tokens = self.prompt

    def _run(self) -> np.ndarray:
        feeds = {self.info.tokens.name: self.tokens}
        if self.source is not None and self.info.source is not None:
            feeds[self.info.source.name] = np.repeat(self.source, len(self.tokens), axis=0)
        (scores,) = _run(self.session, [self.info.output], feeds)
        return to_logp(scores[:, -1], self.info.role)

    def start(self, rows: int) -> np.ndarray:
        self.tokens = np.repeat(self.prompt, rows, axis=0)
        return self._run()

    def advance(self, tokens: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        kept = self.tokens if rows is None else self.tokens[rows]
        new = tokens.astype(self.tokens.dtype)[:, None]
        self.tokens = np.concatenate([kept, new], axis=1)
        return self._run()


class CachedStepper(_Stepper):
    """Feeds a cached decoder the new tokens and the key-value cache of the step before
    (`past_key_values.N.key/value` in, `present.N.key/value` out, [B, heads, P, d])."""

    def __init__(
        self, session: Any, info: ModelInfo, prompt: tuple[int, ...], source: Any = None
    ) -> None:
        super().__init__(session, info, prompt, source)
        self.past_names = [i.name for i in session.get_inputs() if i.name.startswith("past_")]
        self.present_names = [n.replace("past_key_values", "present") for n in self.past_names]
        self.shapes = {i.name: i.shape for i in session.get_inputs()}
        self.past: list[np.ndarray] = []

    def _run(self, tokens: np.ndarray) -> np.ndarray:
        feeds = {
            self.info.tokens.name: tokens,
            **dict(zip(self.past_names, self.past, strict=True)),
        }
        if self.source is not None and self.info.source is not None:  # the encoder reruns
            feeds[self.info.source.name] = np.repeat(self.source, len(tokens), axis=0)
        out = _run(self.session, [self.info.output, *self.present_names], feeds)
        self.past = out[1:]
        return to_logp(out[0][:, -1], self.info.role)

    def start(self, rows: int) -> np.ndarray:
        self.past = []
        for name in self.past_names:
            _, heads, _, dim = self.shapes[name]
            self.past.append(np.zeros((rows, heads, 0, dim), np.float32))
        return self._run(np.repeat(self.prompt, rows, axis=0))

    def advance(self, tokens: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        if rows is not None:
            self.past = [p[rows] for p in self.past]
        return self._run(tokens.astype(self.prompt.dtype)[:, None])
