"""Tests of a recurrent net's state, `initial=` and `enc.h` / `enc.c` (ops/recurrent,
compiler/state_refs.py), beyond the rows of the registry tables (which test_parity runs
through torch, onnxruntime and onnx's reference evaluator): exactly torch's h0/c0 and
h_n/c_n with nn.LSTM's own weights, the same native ONNX nodes (nothing computed twice),
the standalone model.py, located errors, and the seq2seq example, whose decoder reads the
encoder's state and needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn

from conftest import ROOT, error_of
from dlc import __version__
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.model_py import model_py
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.torch import build_fx, to_torch
from dlc.compiler.pipeline import Checked, check_file, check_text
from dlc.runtime.train.loop import Trainer

SEQ2SEQ = ROOT / "specs" / "seq2seq_reverse.yaml"
WITHOUT_STATE = (", initial=enc", "")  # the same spec, its decoder starting from zeros

# a 2-layer bidirectional LSTM from a given state, and its final state as outputs
LSTM_SPEC = """dlc: 1
name: t
inputs:
  x: [B, T, 3]
  h0: [4, B, 5]
  c0: [4, B, 5]
model:
  enc: x -> lstm(5, layers=2, bidirectional=true, initial=[h0, c0])
outputs: {y: enc, h: enc.h, c: enc.c}
"""

# a GRU from a [B, H] state, and an RNN started from the GRU's final state
GRU_SPEC = """dlc: 1
name: t
inputs:
  x: [B, T, 3]
  h: [B, 4]
model:
  g: x -> gru(4, initial=h)
  r: x -> rnn(4, nonlinearity=tanh, initial=g)
outputs: {y: g, s: g.h, r: r, rs: r.h}
"""


def _feeds(checked: Checked, batch: int = 3, steps: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    sizes = {"B": batch, "T": steps}
    return {
        i.name: rng.standard_normal([sizes.get(str(d), d) for d in i.type.shape]).astype(np.float32)
        for i in checked.graph.inputs
    }


def _run(checked: Checked, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> Any:
    """The outputs of the fx module, onnxruntime and the reference evaluator, by name."""
    module = to_torch(checked.graph, weights).eval()
    with torch.no_grad():
        ours = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    model = to_onnx(checked.graph, weights)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(None, feeds), strict=True))
    reference = dict(zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True))
    return {k: v.numpy() for k, v in ours.items()}, theirs, reference, model


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 + 1e-5 * float(np.abs(b).max()))


def test_initial_and_final_state_are_torchs_h0_c0_and_h_n_c_n() -> None:
    """With nn.LSTM's own weights, the outputs and enc.h, enc.c are exactly what nn.LSTM
    returns from (h0, c0); onnxruntime and the reference evaluator agree."""
    torch.manual_seed(0)
    theirs = nn.LSTM(3, 5, 2, bidirectional=True, batch_first=True).eval()
    checked = check_text(LSTM_SPEC, "t.yaml")
    weights = {f"enc.{k}": v.numpy() for k, v in theirs.state_dict().items()}
    feeds = _feeds(checked)
    x, h0, c0 = (torch.from_numpy(feeds[k]) for k in ("x", "h0", "c0"))
    with torch.no_grad():
        y, (h_n, c_n) = theirs(x, (h0, c0))
    ours, ort_out, reference, model = _run(checked, weights, feeds)
    want = {"y": y.numpy(), "h": h_n.numpy(), "c": c_n.numpy()}
    for name, value in want.items():
        np.testing.assert_array_equal(ours[name], value)
        _close(ort_out[name], value)
        _close(reference[name], value)
    # one native node per layer: the state outputs are theirs, not a second run
    assert [n.op_type for n in model.graph.node].count("LSTM") == 2


def test_a_batch_by_hidden_state_and_a_state_from_another_kind_of_net() -> None:
    """gru(initial=h) with h [B, H] is nn.GRU from h.unsqueeze(0); rnn(initial=g) starts
    from the GRU's final h."""
    checked = check_text(GRU_SPEC, "t.yaml")
    weights = initial_weights(checked.graph, 1)
    feeds = _feeds(checked)
    ours, ort_out, reference, _ = _run(checked, weights, feeds)
    gru = nn.GRU(3, 4, batch_first=True)
    rnn = nn.RNN(3, 4, batch_first=True)
    outputs = dict(checked.graph.outputs)
    for output, net in (("y", gru), ("r", rnn)):
        prefix = f"{outputs[output]}."  # the net's node: g, r.rnn
        net.load_state_dict({k.removeprefix(prefix): torch.from_numpy(v)
                             for k, v in weights.items() if k.startswith(prefix)})  # fmt: skip
    x = torch.from_numpy(feeds["x"])
    with torch.no_grad():
        g, g_n = gru(x, torch.from_numpy(feeds["h"])[None])
        r, r_n = rnn(x, g_n)
    for name, value in {"y": g, "s": g_n, "r": r, "rs": r_n}.items():
        np.testing.assert_allclose(ours[name], value.numpy(), rtol=0, atol=1e-6)
        _close(ort_out[name], value.numpy())
        _close(reference[name], value.numpy())


def test_the_decoder_reads_the_encoders_state_from_the_same_native_node() -> None:
    """In seq2seq_reverse the decoder's initial_h and initial_c are the Y_h and Y_c of the
    encoder's LSTM node; torch calls each LSTM module once."""
    checked = check_file(SEQ2SEQ)
    model = to_onnx(checked.graph, initial_weights(checked.graph, 0))
    enc, dec = (n for n in model.graph.node if n.op_type == "LSTM")
    assert list(dec.input[5:7]) == list(enc.output[1:3]) and all(enc.output[1:3])
    g, _, _ = build_fx(checked.graph)
    calls = [n.target for n in g.nodes if n.op == "call_module"]
    assert calls.count("enc.lstm") == 1 and calls.count("dec.lstm") == 1


def _logits(checked: Checked, x: np.ndarray, y_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seq2seq logits by torch and onnxruntime (same random weights)."""
    weights = initial_weights(checked.graph, 0)
    with torch.no_grad():
        ours = to_torch(checked.graph, weights).eval()(torch.from_numpy(x), torch.from_numpy(y_in))
    model = to_onnx(checked.graph, weights)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ours.numpy(), session.run(None, {"x": x, "y_in": y_in})[0]


def test_the_state_changes_the_decoders_output() -> None:
    """Another source under the same decoder input changes the logits; without
    `initial=enc` it cannot."""
    rng = np.random.default_rng(0)
    a, b, y_in = (rng.integers(1, 10, (4, 8)) for _ in range(3))
    text = SEQ2SEQ.read_text()
    for spec, depends in ((text, True), (text.replace(*WITHOUT_STATE), False)):
        checked = check_text(spec, str(SEQ2SEQ))
        (torch_a, ort_a), (torch_b, ort_b) = _logits(checked, a, y_in), _logits(checked, b, y_in)
        _close(ort_a, torch_a)
        _close(ort_b, torch_b)
        assert (np.abs(torch_a - torch_b).max() > 1e-3) == depends


def test_seq2seq_trains_and_beats_the_same_model_without_the_state(tmp_path: Path) -> None:
    """Three epochs: with the encoder's state the decoder reverses most tokens; without it
    it is at chance (1 in 9), whatever it reads."""
    accuracy = {}
    text = SEQ2SEQ.read_text()
    assert WITHOUT_STATE[0] in text
    for name, spec in (("state", text), ("zeros", text.replace(*WITHOUT_STATE))):
        path = tmp_path / f"{name}.yaml"
        path.write_text(spec)
        checked = check_text(spec, str(path), ["training.epochs=3"])
        report = Trainer(checked, path, None, quiet=True).run()
        assert report["status"] == "finished"
        accuracy[name] = report["test"]["accuracy"]
    assert accuracy["state"] > 0.6 and accuracy["zeros"] < 0.2, accuracy


def test_the_standalone_model_py_takes_and_gives_states() -> None:
    checked = check_text(LSTM_SPEC, "t.yaml")
    namespace: dict[str, Any] = {}
    exec(compile(model_py(checked.graph, __version__), "model.py", "exec"), namespace)  # noqa: S102
    standalone = namespace["Model"]().eval()
    fx_module = to_torch(checked.graph, seed=2).eval()
    standalone.load_state_dict(fx_module.state_dict())
    feeds = {k: torch.from_numpy(v) for k, v in _feeds(checked).items()}
    with torch.no_grad():
        got, want = standalone(**feeds), fx_module(**feeds)
    assert got.keys() == want.keys() == {"y", "h", "c"}
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)


def test_graph_nodes_may_use_a_state_before_its_net_is_written() -> None:
    text = """dlc: 1
name: t
inputs: {x: [B, T, 3]}
model:
  dec: x -> lstm(4, initial=[enc.h, enc.c])
  enc: x -> lstm(4)
  y: dec
"""
    nodes = check_text(text, "t.yaml").graph.nodes
    assert [n.op for n in nodes] == ["lstm", "state", "state", "lstm"]


# -- errors -------------------------------------------------------------------------------

BASE = """dlc: 1
name: t
inputs: {x: [B, T, 3]}
model:
  enc: x -> lstm(4)
  g: x -> gru(4)
  d: x -> dense(4)
  b: x -> lstm(4, layers=2, bidirectional=true)
  bad: EXPR
"""


@pytest.mark.parametrize(
    ("expr", "message", "col"),
    [
        ("enc.x", "'enc.x': a lstm has no state part 'x'", 8),
        ("g.c", "a gru has no state part 'c'", 8),
        ("g.c", "hint: the final state of a gru is .h (only an lstm has a cell state .c)", 8),
        ("d.h", "'d.h': node 'd' (dense) has no final state to take '.h' from", 8),
        ("x.h", "input 'x' has no final state", 8),
        ("nope.h", "unknown node or input 'nope'", 8),
        ("enc.h.c", "a lstm has no state part 'h.c'", 8),
        ("x -> enc.h", "'enc.h' is a tensor, not a layer", 13),
        ("x -> dense(enc.h)", "'enc.h' is a tensor, not a value", 19),
        ("x -> lstm(4, initial=enc.c)", "lstm's initial state is 2 tensors (h, c), got 1", 29),
        ("x -> lstm(4, initial=g)", "lstm starts from a state (h, c), but gru node 'g' has no c",
         29),
        ("x -> gru(4, initial=[g.h, enc.c])", "gru's initial state is 1 tensor (h), got 2", 28),
        # the state of a bidirectional net is both directions' of each layer: [layers·2, B, H]
        ("x -> lstm(4, initial=b)",
         "lstm starts from an initial h of [4, B, 4], but its state is [1, B, 4] or [B, 4]", 13),
        ("x -> lstm(4, layers=2, bidirectional=true, initial=enc)",
         "initial h of [1, B, 4], but its state is [4, B, 4]", 13),
    ],
)  # fmt: skip
def test_state_errors_are_located(expr: str, message: str, col: int) -> None:
    err = error_of(BASE.replace("EXPR", expr), "t.yaml")
    assert message in err.render()
    assert err.loc is not None and (err.loc.line, err.loc.col) == (9, col)


def test_a_state_of_a_bidirectional_net_starts_a_twin() -> None:
    """b's state [4, B, 4] is exactly the initial state of a net of b's own shape."""
    text = BASE.replace("EXPR", "x -> lstm(4, layers=2, bidirectional=true, initial=b)")
    graph = check_text(text, "t.yaml").graph
    assert str(graph.types()[dict(graph.outputs)["y"]]) == "[B, T, 8]"


def test_initial_none_is_the_default_also_through_a_block_argument() -> None:
    """A block can take the state as an argument, and `none` starts from zeros."""
    text = """dlc: 1
name: t
inputs: {x: [B, T, 3]}
blocks:
  decoder(start): ["lstm(4, initial=start)"]
model:
  enc: x -> lstm(4)
  a: x -> decoder(enc)
  b: x -> decoder(none)
  c: x -> lstm(4, initial=none)
  y: concat(a, b, c, axis=-1)
"""
    nodes = check_text(text, "t.yaml").graph.nodes
    assert [len(n.inputs) for n in nodes if n.op == "lstm"] == [1, 3, 1, 1]
