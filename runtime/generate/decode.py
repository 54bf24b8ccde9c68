"""The decoding strategies of `dlc generate`: greedy, sampling (temperature, top-k, top-p)
and beam search, in numpy, on any `Stepper`.

A `Stepper` hides how the model is run: `start(rows)` feeds N copies of the prompt and
returns the next token's log-probabilities [N, V]; `advance(tokens, rows)` first keeps
the rows `rows` (beam search reorders its hypotheses; None keeps all), appends one
token per row and returns the log-probabilities after it. model.py has two: one that
recomputes the whole prefix every step and one that feeds the key-value cache back.

What the strategies guarantee:

* greedy takes the first largest log-probability (np.argmax), so ties go to the
  smallest token id; beam search ranks its candidates with a stable sort on the same
  order, so beam search with K = 1 is greedy, token for token;
* sampling draws from softmax(log p / T) after top-k and then top-p filtering, with
  `np.random.default_rng(seed)`: the same seed gives the same tokens;
* a stop token ends a sequence and is kept as its last token;
* beam search scores a hypothesis by its summed log-probability divided by
  length**length_penalty (the GNMT-style normalisation without its constant: 1 is the
  mean log-probability per token, 0 the plain sum). It keeps K live hypotheses; one
  that ends in the stop token is set aside as finished, and the search ends when K are
  finished or after max_new tokens; the best finished one wins (all of them, live ones
  too, when fewer than K finished).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Stepper(Protocol):
    def start(self, rows: int) -> np.ndarray: ...

    def advance(self, tokens: np.ndarray, rows: np.ndarray | None) -> np.ndarray: ...


@dataclass(frozen=True)
class Strategy:
    """How to choose each token: "greedy", "sample" or "beam"."""

    kind: str = "greedy"
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    beams: int = 1
    length_penalty: float = 1.0
    seed: int = 0

    def describe(self) -> str:
        if self.kind == "greedy":
            return "greedy"
        if self.kind == "beam":
            return f"beam search (K={self.beams}, length_penalty={self.length_penalty:g})"
        extra = "".join(
            f", {k}={v:g}" for k, v in (("top_k", self.top_k), ("top_p", self.top_p)) if v
        )
        return f"sampling (temperature={self.temperature:g}{extra}, seed={self.seed})"


@dataclass
class Result:
    tokens: list[int]  # the new tokens, the stop token included when it ended them
    score: float  # their summed log-probability (beam: as ranked, normalised)
    steps: int = 0  # model calls
    finished: bool = False  # ended by the stop token
    beams: list[tuple[list[int], float]] = field(default_factory=list)  # beam: all, best first


def top_k_filter(logp: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest entries of each row (ties at the k-th kept too), -inf elsewhere."""
    if k >= logp.shape[-1]:
        return logp
    kth = np.sort(logp, axis=-1)[..., -k][..., None]
    return np.where(logp >= kth, logp, -np.inf)


def top_p_filter(logp: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of the most probable tokens whose
    probability sums to at least p (the most probable always), -inf elsewhere."""
    if p >= 1.0:
        return logp
    order = np.argsort(-logp, axis=-1, kind="stable")
    probs = softmax(np.take_along_axis(logp, order, axis=-1))
    before = np.cumsum(probs, axis=-1) - probs  # the mass of the tokens ranked above
    keep_sorted = before < p
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return np.where(keep, logp, -np.inf)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def sampling_probs(logp: np.ndarray, s: Strategy) -> np.ndarray:
    """The distribution sampling draws from: filtered, tempered, renormalised."""
    z = logp.astype(np.float64) / s.temperature
    if s.top_k is not None:
        z = top_k_filter(z, s.top_k)
    if s.top_p is not None:
        z = top_p_filter(z, s.top_p)
    return softmax(z)


def generate(stepper: Stepper, s: Strategy, max_new: int, stop: int | None = None) -> Result:
    if s.kind == "beam":
        return _beam(stepper, s.beams, s.length_penalty, max_new, stop)
    rng = np.random.default_rng(s.seed)
    logp = stepper.start(1)[0]
    tokens: list[int] = []
    score, steps = 0.0, 1
    for i in range(max_new):
        if s.kind == "greedy":
            token = int(np.argmax(logp))
        else:
            probs = sampling_probs(logp, s)
            token = int(rng.choice(len(probs), p=probs))
        tokens.append(token)
        score += float(logp[token])
        if token == stop:
            return Result(tokens, score, steps, True)
        if i + 1 < max_new:
            logp = stepper.advance(np.array([token]), None)[0]
            steps += 1
    return Result(tokens, score, steps, False)


def _normalised(score: float, length: int, penalty: float) -> float:
    return score / max(length, 1) ** penalty


def _beam(stepper: Stepper, k: int, penalty: float, max_new: int, stop: int | None) -> Result:
    logp = stepper.start(1)  # one live hypothesis at first: K copies would tie
    seqs: list[list[int]] = [[]]
    scores = np.zeros(1)
    finished: list[tuple[list[int], float]] = []
    steps = 1
    for i in range(max_new):
        total = (scores[:, None] + logp).ravel()
        vocab = logp.shape[1]
        order = np.argsort(-total, kind="stable")[: 2 * k]
        keep_rows, keep_tokens, keep_scores = [], [], []
        for flat in order:
            row, token = divmod(int(flat), vocab)
            if not np.isfinite(total[flat]):
                break
            if token == stop:
                seq = [*seqs[row], token]
                finished.append((seq, _normalised(float(total[flat]), len(seq), penalty)))
                if len(finished) >= k:
                    break
                continue
            keep_rows.append(row)
            keep_tokens.append(token)
            keep_scores.append(float(total[flat]))
            if len(keep_rows) == k:
                break
        if len(finished) >= k or not keep_rows or i + 1 == max_new:
            live = [
                ([*seqs[r], t], sc)
                for r, t, sc in zip(keep_rows, keep_tokens, keep_scores, strict=True)
            ]
            break
        seqs = [[*seqs[r], t] for r, t in zip(keep_rows, keep_tokens, strict=True)]
        scores = np.array(keep_scores)
        logp = stepper.advance(np.array(keep_tokens), np.array(keep_rows))
        steps += 1
    else:  # max_new == 0
        live = []
    ranked = sorted(finished, key=lambda h: -h[1])
    if len(finished) < k:  # the live ones compete, ranked the same way
        ranked = sorted(
            finished + [(seq, _normalised(sc, len(seq), penalty)) for seq, sc in live],
            key=lambda h: -h[1],
        )
    if not ranked:
        return Result([], 0.0, steps, False)
    best, best_score = ranked[0]
    return Result(best, best_score, steps, bool(best) and best[-1] == stop, ranked)
