"""The error catalog: one case per class of bad input, each asserting the message and the
file's own line:column, through the library and through the real `dlc` CLI."""

from __future__ import annotations

import pytest

from conftest import error_of, run_dlc
from dlc.compiler.errors import (
    DlcError,
    ElaborationError,
    ExprSyntaxError,
    LoadError,
    SchemaError,
    ShapeError,
)

HEAD = "dlc: 1\nname: t\ninputs: {x: [B, 16]}\n"  # lines 1-3


def _bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return HEAD + "model: [relu]\nparams:\n" + "\n".join("  " + x for x in lines) + "\n"


# two networks trained as a GAN (tests/test_gan.py has every wiring mistake)
GAN = (
    "dlc: 1\nname: t\nnetworks:\n  g:\n    inputs: {z: [B, 4]}\n    model: [dense(2)]\n"
    "  d:\n    inputs: {x: [B, 2]}\n    model: [dense(1)]\ntraining:\n"
    "  gan: {generator: g, discriminator: d, noise: z}\n  optimizer: {g: adam, d: adam}\n"
)

# (case, spec text, error class, message fragment, "line:col" of the first diagnostic)
CATALOG = [
    ("bad_yaml", HEAD + "model: [dense(4)\n", LoadError, "expected ',' or ']'", "5:1"),
    ("bad_yaml_indent", HEAD + "model:\n  a: x\n b: x\n", LoadError, "", "6:2"),
    (
        "python_tag",
        HEAD + "model: !!python/object/apply:os.system [ls]\n",
        LoadError,
        "Python tags are not allowed",
        "4:8",
    ),
    (
        "duplicate_key",
        HEAD + "model:\n  a: x -> relu\n  a: x -> tanh\n",
        LoadError,
        "duplicate key 'a' (first defined at line 5)",
        "6:3",
    ),
    ("yaml_bomb", _bomb(), LoadError, "alias expansion exceeds", "12:10"),
    (
        "schema_type",
        HEAD + "model: [relu]\ntraining:\n  epochs: ten\n",
        SchemaError,
        "training.epochs must be an integer, not a string ('ten')",
        "6:11",
    ),
    (
        "schema_unknown_key",
        HEAD + "modle: [relu]\n",
        SchemaError,
        "unknown top-level key 'modle' (did you mean 'model'?)",
        "4:1",
    ),
    (
        "grammar",
        HEAD + "model:\n  - dense(4\n",
        ExprSyntaxError,
        "syntax error: unexpected end of the expression; expected ')' or ','",
        "5:11",
    ),
    (
        "grammar_chain",
        HEAD + "model:\n  - dense(4) relu\n",
        ExprSyntaxError,
        "syntax error: unexpected 'relu'",
        "5:14",
    ),
    (
        "grammar_quoted",
        HEAD + "model:\n  - 'dense(4,, 2)'\n",
        ExprSyntaxError,
        "unexpected ','",
        "5:14",
    ),
    (
        "unknown_op",
        HEAD + "model:\n  - dens(128) -> relu\n",
        ElaborationError,
        "unknown op or block 'dens' (did you mean 'dense'?)",
        "5:5",
    ),
    (
        "unknown_op_later",
        HEAD + "model:\n  - dense(8) -> rleu\n",
        ElaborationError,
        "unknown op or block 'rleu' (did you mean 'relu'?)",
        "5:17",
    ),
    (
        "unknown_argument",
        HEAD + "model:\n  - dense(4, uints=3)\n",
        ElaborationError,
        "dense has no argument 'uints' (did you mean 'units'?)",
        "5:14",
    ),
    (
        "unknown_param",
        HEAD + "params: {hidden: 8}\nmodel:\n  - dense(hiden * 2)\n",
        ElaborationError,
        "unknown name 'hiden' (did you mean 'hidden'?)",
        "6:11",
    ),
    (
        "unknown_node",
        HEAD + "model:\n  a: x -> relu\n  y: b -> dense(2)\n",
        ElaborationError,
        "unknown node or input 'b'",
        "6:6",
    ),
    (
        "unknown_block",
        HEAD + "blocks:\n  mlp(w): [dense(w)]\nmodel:\n  - mpl(3)\n",
        ElaborationError,
        "unknown op or block 'mpl' (did you mean 'mlp'?)",
        "7:5",
    ),
    (
        "block_argument",
        HEAD + "blocks:\n  mlp(w): [dense(w)]\nmodel:\n  - mlp(v=3)\n",
        ElaborationError,
        "mlp has no argument 'v'",
        "7:9",
    ),
    (
        "wrong_argument_type",
        HEAD + 'model:\n  - dense("wide")\n',
        ElaborationError,
        "argument 'units': expected an integer >= 1, got string 'wide'",
        "5:11",
    ),
    (
        "shape_mismatch",
        HEAD + "model:\n  - residual(dense(32))\n",
        ShapeError,
        "residual adds [B, 16] to its body's [B, 32]; keep the width or project x",
        "5:5",
    ),
    (
        "shape_concat",
        HEAD + "model:\n  a: x -> dense(4)\n  b: x -> reshape([B, 4, 4])\n  y: concat(a, b)\n",
        ShapeError,
        "concat on axis -1 needs equal shapes elsewhere",
        "7:6",
    ),
    (
        "cycle",
        HEAD + "model:\n  a: x + c -> relu\n  b: a -> dense(16)\n  c: b -> tanh\n",
        ElaborationError,
        "the graph has a cycle: a -> c -> b -> a",
        "6:6",
    ),
    (
        "duplicate_name",
        HEAD + "model:\n  a: x -> relu\n  x: a -> relu\n",
        ElaborationError,
        "node 'x' is defined twice",
        "6:3",
    ),
    (
        "node_named_like_op",
        HEAD + "model:\n  relu: x -> tanh\n",
        ElaborationError,
        "node name 'relu' is also an op or a block",
        "5:3",
    ),
    (
        "node_named_like_a_param",
        "dlc: 1\nname: t\nparams: {types: 3}\ninputs: {x: [B, 4]}\n"
        "model:\n  types: x -> dense(types)\n  y: types -> relu\n",
        ElaborationError,
        "node name 'types' is also a param (defined at spec.yaml:3:10)",
        "6:3",
    ),
    (
        "node_named_like_a_block",
        HEAD + "blocks:\n  stage: [relu]\nmodel:\n  stage: x -> tanh\n  y: stage -> relu\n",
        ElaborationError,
        "node name 'stage' is also a block (defined at spec.yaml:5:3)",
        "7:3",
    ),
    (
        "node_named_like_a_block_argument",
        HEAD + "blocks:\n  'b(n)':\n    n: x -> dense(4)\n    y: n -> relu\nmodel: [b(3)]\n",
        ElaborationError,
        "node name 'n' is also an argument of the block",
        "6:5",
    ),
    (
        "input_named_like_a_param",
        "dlc: 1\nname: t\nparams: {x: 3}\ninputs: {x: [B, 4]}\nmodel: [dense(4)]\n",
        ElaborationError,
        "input 'x' is also a param (defined at spec.yaml:3:10)",
        "4:10",
    ),
    (
        "block_named_like_a_param",
        "dlc: 1\nname: t\nparams: {stage: 3}\ninputs: {x: [B, 4]}\n"
        "blocks:\n  stage: [relu]\nmodel: [stage]\n",
        ElaborationError,
        "block name 'stage' is also a param (defined at spec.yaml:3:10)",
        "6:3",
    ),
    (
        "block_named_like_an_input",
        HEAD + "blocks:\n  x: [relu]\nmodel: [x]\n",
        ElaborationError,
        "block name 'x' is also an input (defined at spec.yaml:3:10)",
        "5:3",
    ),
    (
        "node_named_like_a_torch_attribute",
        HEAD + "model:\n  h: x -> tanh\n  forward: h -> dense(3)\n",
        ElaborationError,
        "node name 'forward' is taken: torch modules have an attribute 'forward'",
        "6:3",
    ),
    (
        "node_named_with_underscore",
        HEAD + "model:\n  _h: x -> dense(3)\n",
        ElaborationError,
        "node name '_h' starts with _, which torch keeps for itself",
        "5:3",
    ),
    (
        "param_cycle",
        "dlc: 1\nname: t\nparams: {a: b + 1, b: a * 2}\ninputs: {x: [B, 4]}\nmodel: [dense(a)]\n",
        ElaborationError,
        "params refer to each other in a cycle",
        "3:10",
    ),
    (
        "symbolic_features",
        "dlc: 1\nname: t\ninputs: {x: [B, F]}\nmodel: [dense(3)]\n",
        ShapeError,
        "dense needs a known number of features on the last axis",
        "4:9",
    ),
    (
        "repeat_index_makes_a_width_zero",
        HEAD + "model:\n  - repeat(3, i -> dense(16 - 8 * i))\n",
        ElaborationError,
        "argument 'units': expected an integer >= 1, got 0",
        "5:26",
    ),
    (
        "repeat_index_as_a_layer",
        HEAD + "model:\n  - repeat(2, i -> dense(8) -> i)\n",
        ElaborationError,
        "'i' is the number 0, not a layer",
        "5:32",
    ),
    (
        "repeat_index_shadows_a_param",
        "dlc: 1\nname: t\nparams: {c: 8}\ninputs: {x: [B, 4]}\nmodel:\n"
        "  - repeat(2, c -> dense(c))\n",
        ElaborationError,
        "repeat's index 'c' is also a param (defined at spec.yaml:3:10)",
        "6:15",
    ),
    (
        "repeat_index_shadows_a_block_argument",
        HEAD + "blocks:\n  'stage(w)': ['repeat(2, w -> dense(w))']\nmodel: [stage(4)]\n",
        ElaborationError,
        "repeat's index 'w' is also an argument of the block",
        "5:27",
    ),
    (
        "repeat_index_unused",
        HEAD + "model: ['repeat(2, k -> dense(8))']\n",
        ElaborationError,
        "repeat's index 'k' is not used in its body",
        "4:20",
    ),
    (
        "no_inputs",
        "dlc: 1\nname: t\nmodel: [relu]\n",
        ElaborationError,
        "the spec has no inputs",
        "3:8",
    ),
    (
        "tensor_arithmetic_broadcast",
        "dlc: 1\nname: t\ninputs: {x: [B, 8, 4, 4], s: [B, 4]}\nmodel:\n  y: x * s\n",
        ShapeError,
        "mul cannot broadcast [B, 8, 4, 4] and [B, 4]: axis -2 is 4 and B",
        "5:6",
    ),
    (
        "tensor_arithmetic_over_constants_only",
        HEAD + "params: {d: 4}\nmodel:\n  y: 2 * d\n",
        ElaborationError,
        "expected a layer or a tensor here, got the number 8 (arithmetic over constants only)",
        "6:6",
    ),
    (
        "tensor_divided_by_zero",
        HEAD + "model:\n  y: x / 0\n",
        ElaborationError,
        "division by zero",
        "5:10",
    ),
    (
        "int_tensor_times_float",
        "dlc: 1\nname: t\ninputs: {x: {shape: [B, 4], dtype: int64}}\nmodel:\n  y: x * 0.5\n",
        ShapeError,
        "'*' of the int64 tensor 'x' and the float 0.5 would make a float tensor",
        "5:6",
    ),
    (
        "gan_generator_does_not_fit_discriminator",
        GAN.replace("[dense(2)]", "[dense(3)]"),
        ElaborationError,
        "the generator's output 'y' [B, 3] does not fit the discriminator's input 'x' [B, 2]",
        "8:14",
    ),
    (
        "gan_unknown_network",
        GAN.replace("discriminator: d,", "discriminator: dd,"),
        ElaborationError,
        "training.gan.discriminator names unknown network 'dd' (did you mean 'd'?)",
        "11:38",
    ),
    (
        "gan_missing_optimizer",
        GAN.replace("{g: adam, d: adam}", "{g: adam}"),
        ElaborationError,
        "training.optimizer gives no optimizer for network 'd'",
        "12:14",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "kind", "message", "where"), CATALOG, ids=[c[0] for c in CATALOG]
)
def test_error_catalog(case: str, text: str, kind: type, message: str, where: str) -> None:
    err = error_of(text)
    assert isinstance(err, kind), err.render()
    diag = next((d for d in err.diagnostics if message in d.message), None)
    assert diag is not None, err.render()
    assert str(diag.loc) == f"spec.yaml:{where}", err.render()
    rendered = diag.render()
    assert rendered.startswith(f"spec.yaml:{where}: error: ")
    if diag.loc.source.line(diag.loc.line).strip():
        assert "^" in rendered  # the source line with a caret under the span


@pytest.mark.parametrize(
    ("case", "text", "kind", "message", "where"),
    [
        c
        for c in CATALOG
        if c[0]
        in (
            "bad_yaml",
            "unknown_op",
            "cycle",
            "shape_mismatch",
            "yaml_bomb",
            "tensor_arithmetic_broadcast",
        )
    ],
    ids=lambda v: v if isinstance(v, str) and "\n" not in v else "",
)
def test_cli_reports_error_with_exit_1(tmp_path, case, text, kind, message, where) -> None:  # noqa: ANN001
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result = run_dlc("check", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert f"spec.yaml:{where}: error: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_independent_errors_are_all_reported() -> None:
    err = error_of(
        HEAD + "model:\n  - dense(4) -> relu\n  - dens(3)\n  - dropout(2)\n"
        "  - dense(2, bais=true)\n"
    )
    where = [(d.loc.line, d.loc.col) for d in err.diagnostics]
    assert where == [(6, 5), (7, 13), (8, 14)]
    assert [d.message.split(":")[0] for d in err.diagnostics][0].startswith("unknown op")


def test_independent_shape_errors_without_cascades() -> None:
    err = error_of(
        HEAD + "model:\n  a: x -> residual(dense(8)) -> relu -> dense(3)\n"
        "  b: x -> maxout(3)\n  y: concat(a, b)\n"
    )
    assert isinstance(err, ShapeError)
    assert [d.loc.line for d in err.diagnostics] == [5, 6]  # y depends on both: not reported


def test_set_override_errors(tmp_path) -> None:  # noqa: ANN001
    spec = tmp_path / "s.yaml"
    spec.write_text(HEAD + "params: {hidden: 8}\nmodel: [dense(hidden)]\n")
    result = run_dlc("check", str(spec), "--set", "hiden=3", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "--set:1:1: error: --set names unknown param 'hiden' (did you mean 'hidden'?)"
        in result.stderr
    )
    result = run_dlc("check", str(spec), "--set", "hidden=wide", cwd=tmp_path)
    assert result.returncode == 1 and "expected a number" in result.stderr
    result = run_dlc("check", str(spec), "--set", "hidden=0", cwd=tmp_path)
    assert result.returncode == 1 and "expected an integer >= 1, got 0" in result.stderr


def test_missing_file_is_a_clean_error(tmp_path) -> None:  # noqa: ANN001
    result = run_dlc("check", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_every_error_is_a_dlc_error() -> None:
    assert all(issubclass(c[2], DlcError) for c in CATALOG)


def test_a_mistake_in_a_block_body_names_the_calls_that_led_to_it() -> None:
    err = error_of(
        HEAD + "blocks:\n  inner(k): [dense(k)]\n  'stage(m)': ['inner(m - 2)']\n"
        "model:\n  - stage(3)\n  - stage(1)\n"
    )
    assert len(err.diagnostics) == 1, err.render()  # stage(3) is fine: only stage(1) fails
    diag = err.diagnostics[0]
    assert diag.message == "argument 'units': expected an integer >= 1, got -1"
    assert str(diag.loc) == "spec.yaml:5:20"  # dense(k), in inner's body
    notes = [(n.severity, n.message, str(n.loc)) for n in diag.notes]
    assert notes == [  # innermost first, one per block call
        ("note", "in the call inner(m - 2)", "spec.yaml:6:17"),
        ("note", "in the call stage(1)", "spec.yaml:9:5"),
    ]
    assert diag.render().endswith(
        "spec.yaml:9:5: note: in the call stage(1)\n 9 |   - stage(1)\n   |     ^^^^^^^^"
    )


def test_a_block_calling_itself_names_only_the_first_call() -> None:
    err = error_of(HEAD + "blocks:\n  b: [b]\nmodel:\n  h: x -> dense(4)\n  y: h -> b\n")
    (diag,) = err.diagnostics
    assert diag.message == "blocks nest deeper than 32 (does 'b' call itself?)"
    assert str(diag.loc) == "spec.yaml:5:7"
    assert [(n.message, str(n.loc)) for n in diag.notes] == [("in the call b", "spec.yaml:8:11")]


def test_errors_outside_blocks_and_syntax_errors_have_no_call_notes() -> None:
    err = error_of(HEAD + "blocks:\n  b: ['dense(']\nmodel:\n  - b\n  - dense(0)\n")
    assert [(str(d.loc), d.notes) for d in err.diagnostics] == [
        ("spec.yaml:5:13", ()),
        ("spec.yaml:8:11", ()),
    ], err.render()


def test_a_mistake_in_one_repeat_copy_names_the_copy_and_the_calls_around_it() -> None:
    err = error_of(
        HEAD + "blocks:\n  'stage(w)': [dense(w)]\n"
        "  'outer(n)': ['repeat(2, i -> stage(n - i))']\n"
        "model:\n  - repeat(3, j -> outer(j + 1))\n"
    )
    # outer(1) fails in its copy i = 1 (stage(0)); outer(2), outer(3) are fine
    (diag,) = err.diagnostics
    assert (diag.message, str(diag.loc)) == (
        "argument 'units': expected an integer >= 1, got 0",
        "spec.yaml:5:22",
    )
    notes = [(n.severity, n.message, str(n.loc)) for n in diag.notes]
    assert notes == [  # innermost first: block calls and copies as they nest
        ("note", "in the call stage(n - i)", "spec.yaml:6:32"),
        ("note", "in repeat copy i = 1", "spec.yaml:6:17"),
        ("note", "in the call outer(j + 1)", "spec.yaml:8:20"),
        ("note", "in repeat copy j = 0", "spec.yaml:8:5"),
    ]
    assert diag.render().endswith(
        "spec.yaml:8:5: note: in repeat copy j = 0\n"
        " 8 |   - repeat(3, j -> outer(j + 1))\n"
        "   |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    )


def test_a_repeat_without_an_index_adds_no_copy_note() -> None:
    err = error_of(HEAD + "blocks:\n  'b(w)': [dense(w)]\nmodel: ['repeat(2, b(0))']\n")
    # (each copy reports it: the copies are the same, the notes too)
    assert {tuple(n.message for n in d.notes) for d in err.diagnostics} == {("in the call b(0)",)}


CLASHES = [c for c in CATALOG if c[0].endswith(("like_a_param", "like_a_block", "like_an_input"))]


@pytest.mark.parametrize(
    ("case", "text", "kind", "message", "where"), CLASHES, ids=[c[0] for c in CLASHES]
)
def test_a_name_clash_is_reported_once_with_a_hint(case, text, kind, message, where) -> None:  # noqa: ANN001
    err = error_of(text)
    (diag,) = err.diagnostics  # no cycle, no unknown node at its users
    assert diag.message == message and str(diag.loc) == f"spec.yaml:{where}"
    assert diag.hint is not None and diag.hint.startswith("rename the ")


def test_outputs_that_use_a_reported_node_are_not_reported_again() -> None:
    err = error_of(
        HEAD + "model:\n  h: x -> dens(4)\n  g: x -> dense(4)\n  y: g -> relu\n"
        "outputs: {y: y, t: h, u: h -> relu}\n"
    )
    assert [(d.message, str(d.loc)) for d in err.diagnostics] == [
        ("unknown op or block 'dens' (did you mean 'dense'?)", "spec.yaml:5:11")
    ]
