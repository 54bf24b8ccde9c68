"""`dlc generate`, its key-value cache and the server's generate endpoint.

The strategies run on models built here with onnx.helper whose log-probabilities are
known: `bigram`, a causal "language model" whose logits at each position are a row of
a table chosen by the token there, and `encdec`, the same plus a term from the source.
The cached lowering is compared with the full one on transformer specs (learned and
sinusoidal positions, 1 and 2 layers); one real transformer_lm run (2 epochs) is decoded
through the CLI and the server.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from conftest import ROOT, run_dlc, save_onnx, start_server, stop
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.onnx_cached import CacheUnsupported, to_onnx_cached
from dlc.compiler.ops.attention.onnx import FUSED_OPSET, runs_attention
from dlc.compiler.pipeline import check_file, check_text
from dlc.runtime.cli import main
from dlc.runtime.generate.decode import (
    Strategy,
    generate,
    log_softmax,
    sampling_probs,
    top_k_filter,
    top_p_filter,
)
from dlc.runtime.generate.model import FullStepper, open_model

# the bigram model: after token r the next is drawn from softmax(LOGITS[r]); from the start
# token 0 greedy takes 1 (p .5), after which everything is even (p .25), while 2 (p .4)
# leads to 3 with p .9: the best two-token sequence is 2 3 (.36 > .125), beam search's.
PROBS = np.array(
    [
        [0.0, 0.5, 0.4, 0.1],
        [0.25, 0.25, 0.25, 0.25],
        [0.02, 0.04, 0.04, 0.9],
        [0.7, 0.1, 0.1, 0.1],
    ]
)
with np.errstate(divide="ignore"):
    LOGITS = np.log(PROBS).clip(-30).astype(np.float32)


def bigram_model(path: Path) -> Path:
    """logits [B, T, 4] = LOGITS[x]: the next token's scores depend on the last token."""
    graph = h.make_graph(
        [h.make_node("Gather", ["table", "x"], ["logits"], axis=0)],
        "bigram",
        [h.make_tensor_value_info("x", T.INT64, ["B", "T"])],
        [h.make_tensor_value_info("logits", T.FLOAT, ["B", "T", 4])],
        [onnx.numpy_helper.from_array(LOGITS, "table")],
    )
    return save_onnx(graph, path)


def encdec_model(path: Path) -> Path:
    """logits = LOGITS[y_in] + mean over the source of EYE3[x] [B, 1, 4]: the source
    (vocab 3, its own table) pushes its tokens up."""
    eye = (10 * np.eye(3, 4)).astype(np.float32)
    nodes = [
        h.make_node("Gather", ["table", "y_in"], ["dec"], axis=0),
        h.make_node("Gather", ["src_table", "x"], ["src"], axis=0),
        h.make_node("ReduceMean", ["src"], ["pooled"], axes=[1], keepdims=1),
        h.make_node("Add", ["dec", "pooled"], ["logits"]),
    ]
    graph = h.make_graph(
        nodes,
        "encdec",
        [
            h.make_tensor_value_info("x", T.INT64, ["B", "S"]),
            h.make_tensor_value_info("y_in", T.INT64, ["B", "T"]),
        ],
        [h.make_tensor_value_info("logits", T.FLOAT, ["B", "T", 4])],
        [
            onnx.numpy_helper.from_array(LOGITS, "table"),
            onnx.numpy_helper.from_array(eye, "src_table"),
        ],
    )
    return save_onnx(graph, path)


def float_model(path: Path) -> Path:
    graph = h.make_graph(
        [h.make_node("Relu", ["x"], ["y"])],
        "float",
        [h.make_tensor_value_info("x", T.FLOAT, ["B", 4])],
        [h.make_tensor_value_info("y", T.FLOAT, ["B", 4])],
    )
    return save_onnx(graph, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "bigram": bigram_model(d / "bigram.onnx"),
        "encdec": encdec_model(d / "encdec.onnx"),
        "float": float_model(d / "float.onnx"),
    }


def decode(path: Path, s: Strategy, max_new: int, prompt=(0,), source=None, stop=None):
    session, info = open_model(path)
    return generate(FullStepper(session, info, prompt, source), s, max_new, stop)


# -- the strategies --------------------------------------------------------------------


def test_greedy_takes_the_most_probable_token_each_step(models: dict[str, Path]) -> None:
    r = decode(models["bigram"], Strategy("greedy"), 4)
    assert r.tokens == [1, 0, 1, 0]  # 1 (.5), then the first of the even ones: 0
    assert r.score == pytest.approx(float(np.sum(np.log([0.5, 0.25, 0.5, 0.25]))), abs=1e-5)


def test_beam_search_finds_the_sequence_greedy_misses(models: dict[str, Path]) -> None:
    r = decode(models["bigram"], Strategy("beam", beams=2, length_penalty=0.0), 2)
    assert r.tokens == [2, 3]
    assert r.score == pytest.approx(math.log(0.4 * 0.9), abs=1e-5)
    assert [seq for seq, _ in r.beams] == [[2, 3], [1, 0]]
    assert decode(models["bigram"], Strategy("greedy"), 2).tokens == [1, 0]


@pytest.mark.parametrize("stop", [None, 3, 0])
@pytest.mark.parametrize("prompt", [(0,), (2,), (1, 3)])
def test_beam_with_one_beam_is_greedy(models: dict[str, Path], prompt, stop) -> None:
    greedy = decode(models["bigram"], Strategy("greedy"), 6, prompt, stop=stop)
    beam = decode(models["bigram"], Strategy("beam", beams=1), 6, prompt, stop=stop)
    assert beam.tokens == greedy.tokens


def test_a_stop_token_ends_the_sequence_and_is_kept(models: dict[str, Path]) -> None:
    r = decode(models["bigram"], Strategy("greedy"), 10, (2,), stop=0)
    assert r.tokens == [3, 0] and r.finished
    beam = decode(models["bigram"], Strategy("beam", beams=3), 10, (2,), stop=0)
    assert beam.finished and beam.tokens[-1] == 0


def test_length_penalty_ranks_by_mean_log_probability(models: dict[str, Path]) -> None:
    # from 3: stop at once (0, p .7) or go on; summed log p prefers the shortest,
    # the mean prefers the hypothesis with the higher average
    plain = decode(models["bigram"], Strategy("beam", beams=3, length_penalty=0.0), 4, (3,), stop=0)
    assert plain.tokens == [0]
    mean = decode(models["bigram"], Strategy("beam", beams=3, length_penalty=1.0), 4, (3,), stop=0)
    scores = [s for _, s in mean.beams]
    assert scores == sorted(scores, reverse=True)
    for seq, s in mean.beams:
        logp = [math.log(PROBS[a, b]) for a, b in zip([3, *seq[:-1]], seq, strict=True)]
        assert s == pytest.approx(sum(logp) / len(seq), abs=1e-5)


def test_sampling_is_seeded(models: dict[str, Path]) -> None:
    runs = [
        decode(models["bigram"], Strategy("sample", seed=s), 30, (1,)).tokens for s in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_sampling_draws_from_the_filtered_distribution(models: dict[str, Path]) -> None:
    # after 0: top-k 2 keeps 1 and 2 (.5, .4); top-p .5 keeps 1 alone; over many draws
    counts = np.zeros(4)
    for seed in range(300):
        r = decode(models["bigram"], Strategy("sample", top_k=2, seed=seed), 1)
        counts[r.tokens[0]] += 1
    assert counts[0] == counts[3] == 0
    assert abs(counts[1] / 300 - 0.5 / 0.9) < 0.1
    only = {decode(models["bigram"], Strategy("sample", top_p=0.5, seed=s), 1).tokens[0]
            for s in range(20)}  # fmt: skip
    assert only == {1}
    # top-k 1 and a tiny temperature are greedy (where the most probable is unique)
    greedy = decode(models["bigram"], Strategy(), 3, (2,)).tokens
    assert greedy == [3, 0, 1]
    for s in (Strategy("sample", top_k=1, seed=3), Strategy("sample", temperature=1e-3, seed=3)):
        assert decode(models["bigram"], s, 3, (2,)).tokens == greedy


def test_top_k_and_top_p_filters_against_hand_computations() -> None:
    logp = np.log(np.array([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.25, 0.25]]))
    k2 = top_k_filter(logp, 2)
    assert np.isneginf(k2[0]).tolist() == [True, False, True, False]
    assert np.isfinite(k2[1]).all()  # ties at the k-th are kept
    assert top_k_filter(logp, 9) is logp
    # sorted .4 .3 .2 .1: the mass before each is 0 .4 .7 .9
    for p, kept in (
        (0.4, [1]),
        (0.41, [1, 3]),
        (0.7, [1, 3]),
        (0.75, [1, 2, 3]),
        (1.0, [0, 1, 2, 3]),
    ):
        got = np.flatnonzero(np.isfinite(top_p_filter(logp[:1], p)[0])).tolist()
        assert got == kept, p
    assert np.isfinite(top_p_filter(logp[:1], 1e-9)).sum() == 1  # the most probable, always
    # tempered, filtered, renormalised: T = 0.5 squares the kept probabilities
    probs = sampling_probs(logp[0], Strategy("sample", temperature=0.5, top_k=2))
    np.testing.assert_allclose(probs, [0, 0.16 / 0.25, 0, 0.09 / 0.25], atol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(logp)).sum(-1), 1.0)


def test_an_encoder_decoder_reads_its_source(models: dict[str, Path]) -> None:
    # the source pushes its mean one-hot (x10) onto the logits: source [2, 2] -> token 2
    r = decode(models["encdec"], Strategy(), 3, (0,), source=(2, 2))
    assert r.tokens == [2, 2, 2]
    assert decode(models["encdec"], Strategy(), 1, (0,), source=(1,)).tokens == [1]


# -- the command line ------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_text(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, models["bigram"], "--prompt", "0", "--beam", "2", "--max-new", "2",
                       "--length-penalty", "0", "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["tokens"] == [2, 3] and doc["prompt"] == [0] and doc["cache"] is False
    code, out, _ = cli(capsys, models["encdec"], "--source", "1,1", "--max-new", "2")
    assert code == 0 and "generated: 1 1" in out and "prompt:    0" in out
    code, out, _ = cli(capsys, models["encdec"], "--source", "2 2 2")  # max-new: the source's
    assert code == 0 and "generated: 2 2 2\n" in out


BAD = [
    (["--prompt", "0", "--beam", "2", "--temperature", "0.7"],
     "beam decoding takes no temperature: those are sampling options"),
    (["--prompt", "0", "--beam", "2", "--top-k", "3"], "beam decoding takes no top_k"),
    (["--prompt", "0", "--greedy", "--top-p", "0.5"],
     "--greedy takes no --beam, --temperature, --top-k or --top-p"),
    (["--prompt", "0", "--top-p", "1.5"], "top_p must be in (0, 1], got 1.5"),
    (["--prompt", "0", "--top-p", "0"], "top_p must be in (0, 1], got 0"),
    (["--prompt", "0", "--top-k", "0"], "top_k must be at least 1, got 0"),
    (["--prompt", "0", "--temperature", "0"], "temperature must be > 0, got 0"),
    (["--prompt", "0", "--temperature", "-1"], "temperature must be > 0, got -1"),
    (["--prompt", "0", "--beam", "0"], "the beam width must be at least 1, got 0"),
    (["--prompt", "0", "--length-penalty", "1"], "greedy decoding takes no length_penalty"),
    (["--prompt", "0 4"], "prompt token 4 is outside the vocab: the model knows tokens 0..3"),
    (["--prompt", "-1"], "prompt token -1 is outside the vocab"),
    (["--prompt", "1 x"], "--prompt must be token ids (integers), got 'x'"),
    (["--prompt", ""], "the prompt is empty: give at least one token"),
    ([], "give a prompt: at least one token"),
    (["--prompt", "0", "--source", "1"], "the model is a language model with one token input"),
    (["--prompt", "0", "--stop", "7"], "stop token 7 is outside the vocab"),
    (["--prompt", "0", "--max-new", "-2"], "max_new must be >= 0, got -2"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_options_are_clear_errors(
    models: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, models["bigram"], *args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err


def test_bad_models_and_sources(models: dict[str, Path], capsys, tmp_path: Path) -> None:
    cases = [
        ([models["float"], "--prompt", "1"], "has no integer token input"),
        ([models["encdec"]], "an encoder-decoder: give the source tokens for its input 'x'"),
        ([models["encdec"], "--source", "3"], "outside the vocab: the model knows tokens 0..2"),
        ([models["encdec"], "--source", ""], "the source is empty"),
        ([tmp_path / "nothing.onnx", "--prompt", "1"], "does not exist"),
        ([tmp_path, "--prompt", "1"], "is a folder but not a run folder: it has no model.onnx"),
        ([ROOT / "specs" / "xor.yaml", "--prompt", "1"], "is a spec: generation needs a trained"),
    ]  # fmt: skip
    for args, message in cases:
        code, _, err = cli(capsys, *args)
        assert code == 1 and message in err, (args, err)


def test_positions_are_read_off_each_inputs_positional_table(tmp_path: Path, capsys) -> None:
    text = (ROOT / "specs" / "translator.yaml").read_text()
    source = "x -> embedding(vocab, dim) -> positional_encoding("
    text = text.replace(
        source + "kind=learned, max_len=steps)", source + "kind=sinusoidal, max_len=9)"
    )
    checked = check_text(text, overrides=["dim=16", "ff=16"])
    path = tmp_path / "translator.onnx"
    onnx.save(to_onnx(checked.graph, initial_weights(checked.graph, 0)), path)
    _, info = open_model(path)
    assert (info.tokens.name, info.max_positions) == ("y_in", 16)
    assert (info.source.name if info.source else None, info.source_positions) == ("x", 9)
    code, _, err = cli(capsys, path, "--source", " ".join(["1"] * 10))
    assert code == 1
    assert "the source has 10 tokens; the model's encoder has 9 positions" in err
    code, out, _ = cli(capsys, path, "--source", " ".join(["1"] * 9), "--max-new", "16")
    assert code == 0 and len(out.splitlines()[2].split()) == 17  # 'generated:' and 16


# -- the key-value cache -------------------------------------------------------------------

LM = (ROOT / "specs" / "transformer_lm.yaml").read_text()


@pytest.mark.parametrize("opset", [17, FUSED_OPSET])  # the MatMul pattern, the Attention op
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_cached_decoder_matches_the_full_model_at_every_step(
    kind: str, layers: int, opset: int
) -> None:
    checked = check_text(LM.replace("kind=learned", f"kind={kind}"), overrides=[f"layers={layers}"])
    weights = initial_weights(checked.graph, 3)
    model = to_onnx_cached(checked.graph, weights, opset=opset,
                           extra_outputs=checked.export_outputs)  # fmt: skip
    ops = {n.op_type for n in model.graph.node}
    assert ("Attention" in ops) == (opset == FUSED_OPSET and runs_attention(opset))
    onnx.checker.check_model(model, full_check=True)
    names = [i.name for i in model.graph.input]
    assert names == ["x"] + [
        f"past_key_values.{n}.{k}" for n in range(layers) for k in ("key", "value")
    ]
    assert [o.name for o in model.graph.output][2:] == [
        n.replace("past_key_values", "present") for n in names[1:]
    ]
    cached = ort.InferenceSession(model.SerializeToString())
    tokens = np.random.default_rng(layers).integers(0, 16, (3, 12))
    full_model = to_onnx(checked.graph, weights, opset=opset, extra_outputs=checked.export_outputs)
    want, want_probs = ort.InferenceSession(full_model.SerializeToString()).run(
        ["logits", "probs"], {"x": tokens}
    )
    outputs = ["logits", "probs", *(n.replace("past_key_values", "present") for n in names[1:])]
    empty = {n: np.zeros((3, 4, 0, 8), np.float32) for n in names[1:]}
    feeds = empty
    pieces = [(0, 5), *((t, t + 1) for t in range(5, 12))]  # a prompt of 5, then one by one
    for lo, hi in pieces:
        out = cached.run(outputs, {"x": tokens[:, lo:hi], **feeds})
        np.testing.assert_allclose(out[0], want[:, lo:hi], atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(out[1], want_probs[:, lo:hi], atol=1e-5)
        assert out[2].shape == (3, 4, hi, 8)
        feeds = dict(zip(names[1:], out[2:], strict=True))
    # the whole sequence in one call with no past is the full model
    out = cached.run(["logits"], {"x": tokens, **empty})
    np.testing.assert_allclose(out[0], want, atol=1e-4, rtol=1e-4)


def test_a_cached_transformer_encoder_decoder_matches_the_full_model() -> None:
    """translator: the encoder (bidirectional, over the source) runs whole at every step
    with its ordinary rules; the decoder's self-attention is cached, its cross-attention
    reads the memory."""
    checked = check_file(ROOT / "specs" / "translator.yaml", ["dim=32", "ff=32"])
    weights = initial_weights(checked.graph, 5)
    full = ort.InferenceSession(to_onnx(checked.graph, weights).SerializeToString())
    model = to_onnx_cached(checked.graph, weights)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input][:2] == ["x", "y_in"]
    cached = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(0)
    x, y_in = rng.integers(0, 10, (2, 7)), rng.integers(0, 10, (2, 9))
    (want,) = full.run(["logits"], {"x": x, "y_in": y_in})
    pasts = [i.name for i in model.graph.input][2:]
    assert len(pasts) == 4  # 2 layers, key and value
    feeds = {n: np.zeros((2, 4, 0, 8), np.float32) for n in pasts}
    for lo, hi in [(0, 1), *((t, t + 1) for t in range(1, 9))]:
        out = cached.run(None, {"x": x, "y_in": y_in[:, lo:hi], **feeds})
        np.testing.assert_allclose(out[0], want[:, lo:hi], atol=1e-4, rtol=1e-4)
        feeds = dict(zip(pasts, out[1:], strict=True))


@pytest.mark.parametrize(
    ("spec", "edit", "message"),
    [
        ("transformer_lm", ("causal=true", "causal=false"), "is not causal"),
        ("seq2seq_reverse", ("", ""), "no causal attention"),
        (
            "translator",
            ("transformer_decoder(memory,", "transformer_decoder(memory, causal=false,"),
            "dec.transformer_decoder is not causal",
        ),
    ],
)
def test_models_without_a_cache_to_keep_say_why(
    spec: str, edit: tuple[str, str], message: str
) -> None:
    checked = check_text((ROOT / "specs" / f"{spec}.yaml").read_text().replace(*edit))
    with pytest.raises(CacheUnsupported, match=message):
        to_onnx_cached(checked.graph, initial_weights(checked.graph, 0))


# -- a real run, through the CLI and the server ----------------------------------------


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lm"
    r = run_dlc("train", "specs/transformer_lm.yaml", "--out", str(out), "-q",
                "--set", "training.epochs=2", env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def _generate_json(*args: str) -> dict:
    """`dlc generate ARGS --json` in this process (the real entry point is run as a
    subprocess once, for the refusal below)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["generate", *args, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def test_a_trained_language_model_decodes_with_and_without_the_cache(lm_run: Path) -> None:
    assert check_file(lm_run / "spec.yaml").graph.name == "transformer_lm"
    cached = _generate_json(str(lm_run), "--prompt", "3 5 7", "--max-new", "9")
    assert cached["cache"] is True and (lm_run / "decoder_cached.onnx").is_file()
    plain = _generate_json(str(lm_run), "--prompt", "3 5 7", "--max-new", "9", "--no-cache")
    assert plain["cache"] is False
    assert cached["tokens"] == plain["tokens"] and len(cached["tokens"]) == 9
    assert cached["score"] == pytest.approx(plain["score"], abs=1e-3)
    beam1 = _generate_json(str(lm_run), "--prompt", "3 5 7", "--max-new", "9", "--beam", "1")
    assert beam1["tokens"] == cached["tokens"]
    beam = _generate_json(
        str(lm_run), "--prompt", "3 5 7", "--max-new", "9", "--beam", "3", "--no-cache"
    )
    beam_cached = _generate_json(str(lm_run), "--prompt", "3 5 7", "--max-new", "9", "--beam", "3")
    assert beam["tokens"] == beam_cached["tokens"]
    by_file = _generate_json(str(lm_run / "model.onnx"), "--prompt", "3 5 7", "--max-new", "9")
    assert by_file["cache"] is True and by_file["tokens"] == cached["tokens"]
    r = run_dlc("generate", str(lm_run), "--prompt", "1 2 3", "--max-new", "11")
    assert r.returncode == 1
    assert "3 prompt tokens and 11 new tokens need 13 positions" in r.stderr
    assert "(the last new token is not read); the model has 12" in r.stderr
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["generate", str(lm_run), "--prompt", " ".join(["1"] * 13)])
    assert code == 1 and out.getvalue() == ""
    assert err.getvalue().startswith("error: the prompt has 13 tokens; the model has 12 positions")
    # the longest the positions allow: 3 + 10 - 1 = 12, with and without the cache
    full = _generate_json(str(lm_run), "--prompt", "1 2 3", "--max-new", "10", "--no-cache")
    assert (
        full["tokens"]
        == _generate_json(str(lm_run), "--prompt", "1 2 3", "--max-new", "10")["tokens"]
    )


def _post(port: int, model: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{model}/generate", body,
                                 method="POST")  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(models: dict[str, Path], lm_run: Path, tmp_path_factory) -> Iterator[int]:
    named = [f"{k}={v}" for k, v in models.items()] + [f"lm={lm_run / 'model.onnx'}"]
    s = start_server(named, tmp_path_factory.mktemp("server"))
    try:
        yield s.port
    finally:
        stop(s)
    assert "Traceback" not in s.err.read_text()


def test_the_server_generates_as_the_cli_does(server: int, lm_run: Path) -> None:
    status, doc = _post(
        server, "bigram", b'{"prompt": [0], "beams": 2, "max_new": 2, "length_penalty": 0}'
    )
    assert status == 200 and doc["tokens"] == [2, 3] and doc["model_name"] == "bigram"
    status, doc = _post(server, "encdec", b'{"source": [2, 2]}')
    assert status == 200 and doc["tokens"] == [2, 2] and doc["prompt"] == [0]
    body = {"prompt": [3, 5, 7], "max_new": 9, "strategy": "sample", "temperature": 0.9, "seed": 4}
    status, doc = _post(server, "lm", json.dumps(body).encode())
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/openapi.json", timeout=30) as r:
        paths = json.loads(r.read())["paths"]
    assert "/v2/models/{model}/generate" in paths
    want = _generate_json(
        str(lm_run), "--prompt", "3 5 7", "--max-new", "9", "--temperature", "0.9", "--seed", "4"
    )
    assert status == 200 and doc["tokens"] == want["tokens"]


SERVER_BAD = [
    ("bigram", {"prompt": [0], "beams": 2, "temperature": 0.7},
     "beam decoding takes no temperature: those are sampling options"),
    ("bigram", {"prompt": [0], "top_p": 1.5}, "top_p must be in (0, 1], got 1.5"),
    ("bigram", {"prompt": [0], "top_k": 0}, "top_k must be at least 1, got 0"),
    ("bigram", {"prompt": [0, 9]}, "token 9 is outside the vocab: the model knows tokens 0..3"),
    ("bigram", {"prompt": "0 1"}, "prompt must be a list of token ids (integers), got '0 1'"),
    ("bigram", {"prompt": [0], "strategy": "nucleus"}, "unknown strategy 'nucleus'"),
    ("bigram", {"prompt": [0], "temprature": 1}, "unknown field 'temprature'"),
    ("bigram", {"prompt": [0], "max_new": "4"}, "max_new must be an integer, got '4'"),
    ("bigram", [0, 1], "the request must be a JSON object"),
    ("encdec", {"prompt": [0]}, "the model is an encoder-decoder: give the source tokens"),
    ("lm", {"prompt": list(range(1, 14))}, "the prompt has 13 tokens; the model has 12 positions"),
    ("float", {"prompt": [0]}, "model 'float' cannot generate: "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "body", "message"), SERVER_BAD, ids=[m[:30] for *_, m in SERVER_BAD]
)
def test_the_server_refuses_bad_requests_with_the_cli_messages(
    server: int, model, body, message
) -> None:
    status, doc = _post(server, model, json.dumps(body).encode())
    assert status == 400 and message in doc["error"], doc
    status, doc = _post(server, "bigram", b"{nope")
    assert status == 400 and doc["error"].startswith("the body is not JSON")
