"""Tensor arithmetic in layer positions (compiler/tensor_arith.py, ops/merge/): `x * s`,
`a - b`, `x * 0.5`, `1 - x`, `-x`: the IR each form becomes, precedence, dtypes, FLOPs,
located errors, and a squeeze-and-excitation graph and a graph of every form through
torch, onnxruntime, `dlc compile --verify` and the standalone model.py. The per-op rows
(shapes, parity, error places) are the merge family's examples.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import ATOL, RTOL, error_of, random_weights, run_dlc
from dlc.compiler.dims import sym
from dlc.compiler.errors import ElaborationError, ShapeError
from dlc.compiler.ir import Graph
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.pipeline import Checked, check_text
from dlc.compiler.tensor_arith import TENSOR_OPS
from dlc.runtime.compile import sample_inputs

SE = """dlc: 1
name: se
inputs: {x: [B, 8, 4, 4]}
model:
  s: x -> global_avgpool -> dense(8) -> sigmoid -> reshape([B, 8, 1, 1])
  y: x * s
"""

# Every form of tensor arithmetic in one graph; int tensors keep their dtype.
EVERY_FORM = """dlc: 1
name: every_form
params: {temperature: 2.0, d: 16}
inputs: {x: [B, 8, 4, 4], t: {shape: [B, 5], dtype: int64}}
model:
  s: x -> global_avgpool -> dense(8) -> sigmoid -> reshape([B, 8, 1, 1])
  a: x * s
  b: x - a
  c: a / (1 + s)
  e: x * 0.5 + 1
  f: 2 * x - x / temperature
  g: 1 - x * (1 / d)
  h: -x
  k: 1 / (x * x + 1)
  m: sub(a, b) + div(c, 1 + x * x)
  n: a + b * s -> relu
  ti: t * 3 - 1
  tn: 7 - t + -t
  y: e + f + g + h + k + m + n + (c - 2)
outputs: {y: y, ti: ti, tn: tn}
"""


def graph_of(model: str, head: str = "inputs: {x: [B, 8], v: [B, 8]}\n") -> Graph:
    return check_text("dlc: 1\nname: t\n" + head + "model:\n" + model, "t.yaml").graph


def ops(g: Graph) -> list[str]:
    return [n.op for n in g.nodes]


def _torch_and_onnxruntime(checked: Checked) -> None:
    """The fx module and onnxruntime agree on random inputs, at two batch sizes."""
    weights = random_weights(checked.graph)
    module = to_torch(checked.graph, weights).eval()
    model = to_onnx(checked.graph, weights)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [name for name, _ in checked.graph.outputs]
    for batch in (1, 3):
        feeds = sample_inputs(checked, batch, np.random.default_rng(batch))
        with torch.no_grad():
            ours = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        ours = ours if isinstance(ours, dict) else {names[0]: ours}
        for name, theirs in zip(names, session.run(names, feeds), strict=True):
            want = ours[name].numpy()
            assert want.dtype == theirs.dtype and want.shape == theirs.shape, name
            scale = float(np.abs(want).max(initial=0.0))
            np.testing.assert_allclose(theirs, want, rtol=0, atol=ATOL + RTOL * scale)


def test_squeeze_and_excitation_multiplies_by_a_broadcast_gate() -> None:
    checked = check_text(SE, "se.yaml")
    y = checked.graph.node("y")
    assert (y.op, y.inputs, str(y.type)) == ("mul", ("x", "s.reshape"), "[B, 8, 4, 4]")
    assert "  %y: [B, 8, 4, 4] = mul(%x, %s.reshape)" in str(checked.graph).splitlines()
    _torch_and_onnxruntime(checked)


def test_every_form_agrees_in_torch_and_onnxruntime() -> None:
    checked = check_text(EVERY_FORM, "every.yaml")
    used = set(ops(checked.graph))
    assert {"add", "sub", "mul", "div", "neg"} <= used
    assert {f"{op}_scalar" for op in TENSOR_OPS.values()} | {"rsub_scalar", "rdiv_scalar"} <= used
    types = checked.graph.types()
    assert [str(types[v]) for _, v in checked.graph.outputs] == [
        "[B, 8, 4, 4]",
        "int64[B, 5]",
        "int64[B, 5]",
    ]
    _torch_and_onnxruntime(checked)


def test_the_scalar_forms_are_one_onnx_node_with_a_scalar_initializer() -> None:
    g = graph_of("  y: 1 - x * 0.5\n")
    model = to_onnx(g, {})
    assert [(n.op_type, len(n.input)) for n in model.graph.node] == [("Mul", 2), ("Sub", 2)]
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert {k: (v.shape, v.dtype, float(v)) for k, v in consts.items()} == {
        "y.mul_scalar.__scalar": ((), np.float32, 0.5),
        "y.rsub_scalar.__scalar": ((), np.float32, 1.0),
    }
    assert model.graph.node[1].input[0] == "y.rsub_scalar.__scalar"  # the constant first
    neg = to_onnx(graph_of("  y: -x\n"), {})
    assert [n.op_type for n in neg.graph.node] == ["Neg"]


def test_compile_verify_and_the_standalone_model_py(tmp_path: Path) -> None:
    spec = tmp_path / "every.yaml"
    spec.write_text(EVERY_FORM)
    result = run_dlc("compile", str(spec), "-o", str(tmp_path / "m.onnx"), "--verify",
                     "--emit", "onnx,torch")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "torch and onnxruntime agree" in result.stdout.splitlines()[-1]
    source = (tmp_path / "m.py").read_text()
    assert "torch.mul(x, 0.5)" in source and "torch.rsub(" in source and "rdiv(" in source
    loader = importlib.util.spec_from_file_location("generated_every", tmp_path / "m.py")
    assert loader and loader.loader
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    checked = check_text(EVERY_FORM, "every.yaml")
    fx_module = to_torch(checked.graph, seed=1).eval()
    standalone = module.Model().eval()
    standalone.load_state_dict(fx_module.state_dict())
    feeds = {k: torch.from_numpy(v)
             for k, v in sample_inputs(checked, 2, np.random.default_rng(0)).items()}  # fmt: skip
    with torch.no_grad():
        a, b = fx_module(**feeds), standalone(**feeds)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # no module for the arithmetic: the only weights are the gate's dense layer
    assert [k for k, _ in fx_module.named_parameters()] == ["s.dense.weight", "s.dense.bias"]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("x * v", "mul(%x, %v)"),
        ("x - v", "sub(%x, %v)"),
        ("x / v", "div(%x, %v)"),
        ("x + v + x", "add(%x, %v, %x)"),  # a chain of + over tensors is one add, as before
        ("x * v * x", "mul(%x, %v, %x)"),
        ("x - v - x", "sub(%y.sub, %x)"),
        ("sub(x, v)", "sub(%x, %v)"),
        ("div(v, x)", "div(%v, %x)"),
        ("x * 0.5", "mul_scalar(%x; scalar=0.5)"),
        ("2 * x", "mul_scalar(%x; scalar=2)"),  # an int stays an int
        ("x + 1", "add_scalar(%x; scalar=1)"),
        ("1 + x", "add_scalar(%x; scalar=1)"),
        ("x - 1", "sub_scalar(%x; scalar=1)"),
        ("1 - x", "rsub_scalar(%x; scalar=1)"),
        ("x / temperature", "div_scalar(%x; scalar=0.7)"),
        ("2 / x", "rdiv_scalar(%x; scalar=2)"),
        ("x * (1 / d)", "mul_scalar(%x; scalar=0.25)"),  # exact at compile time
        ("x * -d", "mul_scalar(%x; scalar=-4)"),
        ("x * (d * temperature - 1)", "mul_scalar(%x; scalar=1.7999999999999998)"),
        ("-x", "neg(%x)"),
        ("-(x * v)", "neg(%y.mul)"),
    ],
)
def test_each_form_elaborates_to_its_op(expr: str, want: str) -> None:
    head = "params: {temperature: 0.7, d: 4}\ninputs: {x: [B, 8], v: [B, 8]}\n"
    g = graph_of(f"  y: '{expr}'\n", head)
    assert str(g).splitlines()[-3].split(" = ", 1)[1] == want


def test_precedence_times_before_plus_before_arrow() -> None:
    g = graph_of("  y: x + v * x -> relu\n")
    assert [(n.name, n.op, n.inputs) for n in g.nodes] == [
        ("y.mul", "mul", ("v", "x")),
        ("y.add", "add", ("x", "y.mul")),
        ("y.relu", "relu", ("y.add",)),
    ]
    g = graph_of("  y: -x * 2 - 1\n")  # unary minus binds tightest: ((-x) * 2) - 1
    assert ops(g) == ["neg", "mul_scalar", "sub_scalar"]


def test_layers_in_a_stack_apply_to_what_flows_in() -> None:
    g = graph_of("  - dense(8)\n  - identity * sigmoid\n  - 1 - tanh\n", "inputs: {x: [B, 4]}\n")
    assert ops(g) == ["dense", "identity", "sigmoid", "mul", "tanh", "rsub_scalar"]


def test_block_arguments_and_string_params_may_be_constants_or_layers() -> None:
    head = (
        "params: {act: sigmoid, half: '1 / 2'}\ninputs: {x: [B, 8]}\n"
        "blocks:\n  'scaled(k)': [identity * k]\n"
    )
    g = graph_of("  - scaled(half)\n  - scaled(act)\n  - identity * act\n  - x * half\n", head)
    assert [(n.op, n.attrs) for n in g.nodes if n.op in ("mul", "mul_scalar")] == [
        ("mul_scalar", (("scalar", 0.5),)),
        ("mul", ()),
        ("mul", ()),
        ("mul_scalar", (("scalar", 0.5),)),
    ]


def test_dtypes_follow_torch_where_it_keeps_them() -> None:
    head = "inputs: {x: [B, 8], t: {shape: [B, 8], dtype: int32}}\n"
    g = graph_of("  a: t * 2 - t\n  b: -t\n  c: x * 2\n  y: 1 - x\n"
                 "outputs: {a: a, b: b, c: c, y: y}\n", head)  # fmt: skip
    assert [str(g.types()[v]) for _, v in g.outputs] == [
        "int32[B, 8]",
        "int32[B, 8]",
        "[B, 8]",
        "[B, 8]",
    ]


def test_flops_are_one_per_output_element() -> None:
    g = graph_of("  a: x - v\n  b: a / x\n  c: b * 0.5\n  d: 1 - c\n  y: -d\n")
    per_op = ("sub", "div", "mul_scalar", "rsub_scalar", "neg")
    assert {n.op: n.flops for n in g.nodes} == dict.fromkeys(per_op, 8 * sym("B"))
    g = graph_of("  y: x * s\n", "inputs: {x: [B, 8, H, W], s: [B, 8, 1, 1]}\n")
    assert g.nodes[0].flops == 8 * sym("B") * sym("H") * sym("W")


HEAD = "dlc: 1\nname: t\nparams: {d: 4, z: 0}\ninputs: {x: [B, 8, 4, 4], v: [B, 4], " \
    "g: [B, 8], t: {shape: [B, 4], dtype: int64}, m: {shape: [B, 4], dtype: bool}}\n" \
    "model:\n"  # fmt: skip
# (case, node text (line 6, quoted: it starts at column 7), error class, message, its column
# in the text, a part of the hint)
ERRORS = [
    ("broadcast", "x * v", ShapeError,
     "mul cannot broadcast [B, 8, 4, 4] and [B, 4]: axis -2 is 4 and B", 1, "align from"),
    ("se_gate_not_reshaped", "x * g", ShapeError,
     "mul cannot broadcast [B, 8, 4, 4] and [B, 8]", 1, "reshape([B, 8, 1, 1])"),
    ("sub_of_two", "x - v", ShapeError, "sub cannot broadcast", 1, None),
    ("constants_only", "2 * 3", ElaborationError,
     "expected a layer or a tensor here, got the number 6 (arithmetic over constants only)",
     1, "needs a tensor operand"),
    ("negated_param", "-d", ElaborationError, "got the number -4", 1, None),
    ("division_by_zero", "x / 0", ElaborationError, "division by zero", 5, "nonzero"),
    ("division_by_a_zero_param", "x / (z * d)", ElaborationError, "division by zero", 5, None),
    ("power", "x ** 2", ElaborationError, "'**' is not defined on tensors", 1, "x * x"),
    ("floor_division", "x // 2", ElaborationError, "'//' is not defined on tensors", 1, None),
    ("layer_without_input", "x * dense(4)", ElaborationError,
     "dense has no input here: the operands of tensor arithmetic are tensors", 5,
     "(h -> dense(4))"),
    ("symbolic_dim", "x * B", ElaborationError, "the symbolic dim B is not a constant", 5,
     "params"),
    ("string", "x * \"s\"", ElaborationError,
     "tensor arithmetic takes a number here, got the string 's'", 5, None),
    ("boolean", "x + true", ElaborationError, "got the boolean true", 5, None),
    ("list", "x * [1, 2]", ElaborationError, "got a list", 5, None),
    ("infinite", "x * 1e999", ElaborationError, "the constant inf is not a finite number", 5,
     None),
    ("too_large", "x * 10 ** 30", ElaborationError, "is too large for a tensor's dtype", 5, None),
    ("unknown_name", "x * gate", ElaborationError, "unknown node or input 'gate'", 5, None),
    ("int_times_float", "t * 0.5", ShapeError,
     "'*' of the int64 tensor 't' and the float 0.5 would make a float tensor", 1,
     "converts no dtypes"),
    ("int_division", "t / 2", ShapeError,
     "'/' of the int64 tensor 't': true division makes floats of integers", 1, None),
    ("int_tensor_division", "t / t", ShapeError, "'/' of the int64 tensor 't'", 1, None),
    ("mixed_dtypes", "v + t", ShapeError, "add of tensors of different dtypes: [B, 4] and "
     "int64[B, 4]", 1, None),
    ("bool", "m * 2", ShapeError, "'*' of the bool tensor 'm'", 1, None),
    ("bool_negated", "-m", ShapeError, "'-' of the bool tensor 'm'", 1, None),
    ("sub_of_three", "sub(x, x, x)", ElaborationError, "sub needs 2 tensors, got 3", 1, None),
    ("a_plain_number_still", "3", ElaborationError,
     "expected a layer or a tensor here, got a number", 1, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "text", "kind", "message", "col", "hint"), ERRORS, ids=[c[0] for c in ERRORS]
)
def test_located_errors(case, text, kind, message, col, hint) -> None:  # noqa: ANN001
    err = error_of(HEAD + f"  y: '{text}'\n")
    assert isinstance(err, kind), err.render()
    (diag,) = err.diagnostics
    assert message in diag.message, diag.message
    assert (diag.loc.line, diag.loc.col) == (6, 6 + col), err.render()
    if hint is not None:
        assert diag.hint is not None and hint in diag.hint, diag.hint


def test_an_error_names_the_file_line_and_column_through_the_cli(tmp_path: Path) -> None:
    spec = tmp_path / "se.yaml"
    spec.write_text(SE.replace("reshape([B, 8, 1, 1])", "identity"))
    result = run_dlc("check", str(spec))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"{spec}:6:6: error: mul cannot broadcast [B, 8, 4, 4] and [B, 8]: axis -2 is 4 and B\n"
        " 6 |   y: x * s\n   |      ^^^^^\n"
    ), result.stderr
