"""Tests of schema validation (`dlc.compiler.validate`) and of the spec schema itself.

What they pin down: a spec using every key of the language passes; every kind of
structural mistake gets one plain-words message at the right `line:col` of the spec
file; independent mistakes are all reported, sorted and without duplicates; the schema
is valid draft 2020-12, documents every property and closes every fixed-key object;
the fast validator reports exactly what a plain jsonschema validator reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dlc.compiler.errors import DlcError, SchemaError
from dlc.compiler.fastschema import fast_validator
from dlc.compiler.loader import load_text
from dlc.compiler.validate import validate
from dlc.schema import load_schema

REPO = Path(__file__).resolve().parent.parent

FULL_SPEC = """\
# yaml-language-server: $schema=https://dlc.dev/schema/spec-v1.json
dlc: 1
name: vae_everything
doc: Every key of the language, once.
params: {hidden: 256, latent: 20, p: 0.5, act: relu, tied: false}
inputs:
  x: [B, 784]
  tokens: {shape: [B, T], dtype: int64}
  img: {shape: [B, 3, H*2, W]}
blocks:
  resblock(c):
    - residual(dense(c) -> relu)
  down(c, stride=2):
    a: x -> dense(c)
    y: a -> relu
  head: dense(10)
model:
  h: x -> dense(hidden) -> relu -> dropout(p)
  mu: h -> dense(latent)
  logvar: h -> dense(latent)
  y: mu -> dense(784)
outputs: {recon: y, mu: mu, logvar: logvar}
training:
  loss:
    - {loss: bce, output: recon, target: x, weight: 1}
    - loss: kl_normal(mu, logvar)
      weight: 0.5
  optimizer: adam(lr=3e-4)
  schedule: cosine(t_max=100)
  warmup: 100
  init: he_normal
  weight_decay: 0.0001
  l1: 0
  regularize_all: false
  clip_grad_norm: 1.0
  log_gradients: true
  tensorboard: false
  diffusion: {schedule: cosine, T: 1000, beta_start: 0.0001, beta_end: 0.02, input: x,
              time: t, output: y, scale: minmax}
  early_stopping: {monitor: val_loss, patience: 5, min_delta: 0.001, restore_best: true,
                   mode: min}
  epochs: 10
  steps: 1000
  batch_size: 128
  seed: 0
  checkpoint_every: 0
  device: auto
  precision: bf16
  metrics: [accuracy, mae]
  task: regression
  data:
    train: builtin:digits
    val: data/val.npz
    test: builtin:moons(n=200, noise=0.1)
    val_split: 0.1
    test_split: 0.2
    shuffle: true
    target: y
    options: {delimiter: ",", header: true}
export:
  opset: 17
  outputs: {probs: softmax(y)}
  ir_version: 9
  dynamic_batch: true
lint:
  ignore: [DLC103]
search:
  space: {params.width: "int(32, 512, log=true)", training.optimizer.lr: "float(1e-4, 1e-1)"}
  metric: val_accuracy
  direction: maximize
  trials: 20
  timeout: 600
  sampler: tpe
  pruner: median
  seed: 0
"""

HEAD = "dlc: 1\nname: m\n"  # lines 1-2
BASE = HEAD + "model: [relu]\n"  # lines 1-3; a case's own lines start at line 4


def diagnostics(text: str) -> list:
    """The diagnostics `validate` raises for `text` (an empty list when it passes)."""
    try:
        validate(load_text(text, "spec.yaml"))
    except SchemaError as err:
        return list(err.diagnostics)
    return []


def only(text: str):
    found = diagnostics(text)
    assert len(found) == 1, [d.render(context=False) for d in found]
    return found[0]


# ------------------------------------------------------------------- valid documents


def test_full_spec_passes() -> None:
    assert diagnostics(FULL_SPEC) == []


def test_full_spec_uses_every_key() -> None:
    """The valid spec above really exercises every property of the schema."""
    data = load_text(FULL_SPEC).data
    defs = load_schema()["$defs"]
    # networks: and training.gan replace model: and the loss (tests/test_gan.py's full spec)
    assert set(data) | {"networks"} == set(load_schema()["properties"])
    assert set(data["training"]) | {"gan"} == set(defs["training"]["properties"])
    assert set(data["training"]["data"]) == set(defs["data"]["properties"])
    assert set(data["training"]["early_stopping"]) == set(defs["earlyStopping"]["properties"])
    assert set(data["training"]["loss"][0]) == set(defs["lossTerm"]["properties"])
    assert set(data["training"]["diffusion"]) == set(defs["diffusion"]["properties"])
    assert set(data["export"]) == set(defs["export"]["properties"])
    assert set(data["lint"]) == set(defs["lint"]["properties"])
    assert set(data["search"]) == set(defs["search"]["properties"])


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "model: dense(10)\n",
        HEAD + "model: [dense(10)]\ntraining: {}\n",
        HEAD + "model: [dense(10)]\ntraining: {batch_size: full, loss: huber(delta=1.0)}\n",
        HEAD + "inputs: {x: [B, T*2, 3]}\nmodel: {y: x -> relu}\n",
        HEAD + "params: {n: 3}\ninputs: {x: [B, n]}\nmodel: [relu]\n",
    ],
)
def test_small_valid_specs_pass(text: str) -> None:
    assert diagnostics(text) == []


def _example_specs() -> list[Path]:
    return sorted((REPO / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", _example_specs(), ids=lambda p: p.name)
def test_example_specs_pass(path: Path) -> None:
    assert diagnostics(path.read_text(encoding="utf-8")) == []


# ---------------------------------------------------------------- one error at a time

# fmt: off
CASES: list[tuple[str, str, str, str]] = [
    # (id, spec text, expected message substring, expected "line:col")
    # unknown keys: at the key, with a did-you-mean
    ("top_level_typo", BASE + "modle: [relu]\n",
     "unknown top-level key 'modle' (did you mean 'model'?)", "4:1"),
    ("training_typo", BASE + "training:\n  epoch: 3\n",
     "unknown key 'epoch' in training (did you mean 'epochs'?)", "5:3"),
    ("unknown_no_match", BASE + "training:\n  colour: red\n",
     "unknown key 'colour' in training", "5:3"),
    ("nested_typo", BASE + "training:\n  data: {train: a.npz, vall: b.npz}\n",
     "unknown key 'vall' in training.data (did you mean 'val'?)", "5:24"),
    ("input_typo", BASE + "inputs:\n  x: {shape: [B, 4], dtyp: int64}\n",
     "unknown key 'dtyp' in inputs.x (did you mean 'dtype'?)", "5:22"),
    ("early_stopping_typo", BASE + "training:\n  early_stopping:\n    patiense: 3\n",
     "unknown key 'patiense' in training.early_stopping (did you mean 'patience'?)", "6:5"),
    # missing required keys: at the mapping's start (1:1 at top level)
    ("missing_model", HEAD, "missing required key 'model'", "1:1"),
    ("missing_model_after_comment", "# a comment\n" + HEAD,
     "missing required key 'model'", "1:1"),
    ("missing_name", "dlc: 1\nmodel: [relu]\n", "missing required key 'name'", "1:1"),
    ("missing_loss", BASE + "training:\n  loss:\n    - weight: 2\n",
     "missing required key 'loss' in training.loss[0]", "6:7"),
    ("missing_shape", BASE + "inputs:\n  x: {dtype: int64}\n",
     "missing required key 'shape' in inputs.x", "5:6"),
    # wrong types
    ("int_not_string", BASE + "training:\n  epochs: ten\n",
     "training.epochs must be an integer, not a string ('ten')", "5:11"),
    ("bool_not_string", BASE + "training:\n  data: {shuffle: sometimes}\n",
     "training.data.shuffle must be true or false, not a string ('sometimes')", "5:19"),
    ("mapping_not_list", BASE + "training: [epochs]\n",
     "training must be a mapping, not a list", "4:11"),
    ("string_not_bool", BASE + "training:\n  early_stopping: {monitor: false}\n",
     "training.early_stopping.monitor must be a string, not a boolean (false)", "5:29"),
    ("number_not_text", BASE + "training:\n  weight_decay: '1e-4'\n",
     "training.weight_decay must be a number, not a string ('1e-4')", "5:18"),
    ("list_item_not_string", HEAD + "model:\n  - dense(10)\n  - 5\n",
     "model[1] must be a string, not an integer (5)", "5:5"),
    ("param_value", BASE + "params: {a: [1, 2]}\n",
     "params.a must be a number, a string or a boolean, not a list", "4:13"),
    ("empty_value", BASE + "training:\n",
     "training must be a mapping, not an empty value (null)", "4:10"),
    # enums and consts
    ("device_enum", BASE + "training:\n  device: gpu\n",
     "training.device must be one of auto, cpu, cuda, mps, not 'gpu' (did you mean 'cuda'?)",
     "5:11"),
    ("dtype_enum", BASE + "inputs:\n  t: {shape: [B, T], dtype: int8}\n",
     "inputs.t.dtype must be one of float32, float64, float16, bfloat16, int64, int32, bool, "
     "not 'int8'", "5:29"),
    ("mode_enum", BASE + "training:\n  early_stopping: {mode: minimize}\n",
     "training.early_stopping.mode must be one of min, max, not 'minimize' (did you mean 'min'?)",
     "5:26"),
    ("version_const", "dlc: 2\nname: m\nmodel: [relu]\n", "dlc must be 1, not 2", "1:6"),
    # bounds
    ("minimum", BASE + "training:\n  epochs: 0\n",
     "training.epochs must be at least 1, not 0", "5:11"),
    ("exclusive_range", BASE + "training:\n  data: {val_split: 1.5}\n",
     "training.data.val_split must be between 0 and 1 (exclusive), not 1.5", "5:21"),
    ("exclusive_minimum", BASE + "training:\n  clip_grad_norm: 0\n",
     "training.clip_grad_norm must be greater than 0, not 0", "5:19"),
    ("range", BASE + "export: {opset: 30}\n", "export.opset must be from 7 to 23, not 30", "4:17"),
    ("ir_version", BASE + "export:\n  ir_version: 2\n",
     "export.ir_version must be at least 3, not 2", "5:15"),
    # patterns: names, keys, block signatures, blank expressions
    ("bad_name", "dlc: 1\nname: 2x\nmodel: [relu]\n",
     "'2x' is not a valid name: use letters, digits and _, not starting with a digit", "2:7"),
    ("bad_input_key", BASE + "inputs:\n  2x: [B, 4]\n",
     "key '2x' in inputs is not a valid name", "5:3"),
    ("bad_node_key", HEAD + "model:\n  a-b: x -> relu\n",
     "key 'a-b' in model is not a valid name", "4:3"),
    ("bad_block_signature", BASE + "blocks:\n  \"res block\": [relu]\n",
     "key 'res block' in blocks is not a valid block signature", "5:4"),
    ("blank_expression", BASE + "outputs: {a: ' '}\n", "outputs.a must not be blank", "4:15"),
    # sizes
    ("empty_model", HEAD + "model: []\n", "model must not be empty", "3:8"),
    ("empty_graph", HEAD + "model: {}\n", "model must not be empty", "3:8"),
    ("no_inputs", BASE + "inputs: {}\n", "inputs must not be empty", "4:9"),
    ("empty_shape", BASE + "inputs:\n  x: []\n", "inputs.x must not be empty", "5:6"),
    ("empty_block", BASE + "blocks:\n  head: []\n", "blocks.head must not be empty", "5:9"),
    ("empty_loss_list", BASE + "training: {loss: []}\n",
     "training.loss must not be empty", "4:18"),
    # alternatives (anyOf): a summary, or the error inside the alternative of the right kind
    ("model_kind", HEAD + "model: 5\n",
     "model must be a list of layer strings or a mapping of named nodes, not an integer (5)",
     "3:8"),
    ("input_kind", BASE + "inputs:\n  x: 784\n",
     "inputs.x must be a shape like [B, 784] or a mapping {shape: [B, T], dtype: int64}, "
     "not an integer (784)", "5:6"),
    ("dim_zero", BASE + "inputs:\n  x: [B, 0]\n",
     "inputs.x[1] must be a positive integer or a dimension name or expression (B, T*2), "
     "not 0", "5:10"),
    ("dim_float", BASE + "inputs:\n  x: {shape: [B, 2.5]}\n",
     "inputs.x.shape[1] must be a positive integer or a dimension name or expression "
     "(B, T*2), not a number (2.5)", "5:18"),
    ("dim_text", BASE + "inputs:\n  x: [B, \"a b!\"]\n",
     "inputs.x[1] must be a positive integer or a dimension name or expression (B, T*2), "
     "not 'a b!'", "5:11"),  # a quoted scalar is located at its text, inside the quotes
    ("loss_kind", BASE + "training:\n  loss: {mse: 1}\n",
     "training.loss must be a loss expression like cross_entropy or a list of loss terms, "
     "not a mapping", "5:9"),
    ("loss_term_kind", BASE + "training:\n  loss: [5]\n",
     "training.loss[0] must be a mapping, not an integer (5)", "5:10"),
    ("batch_size", BASE + "training:\n  batch_size: all\n",
     "training.batch_size must be a positive integer or 'full', not 'all'", "5:15"),
    ("graph_node_value", HEAD + "model:\n  a: x -> relu\n  b: 3\n",
     "model.b must be a string, not an integer (3)", "5:6"),
    ("block_item", BASE + "blocks:\n  res(c): [relu, 5]\n",
     "blocks.res(c)[1] must be a string, not an integer (5)", "5:18"),
    ("network_no_model", HEAD + "networks:\n  g:\n    inputs: {z: [B, 2]}\n",
     "missing required key 'model' in networks.g", "5:5"),
    ("network_unknown_key",
     HEAD + "networks:\n  g: {inputs: {z: [B, 2]}, model: [relu], modle: 1}\n",
     "unknown key 'modle' in networks.g (did you mean 'model'?)", "4:43"),
    ("gan_loss",
     BASE + "training:\n  gan: {generator: g, discriminator: d, noise: z, loss: wgan}\n",
     "training.gan.loss must be one of non_saturating, minimax, hinge, wgan_gp, not 'wgan' "
     "(did you mean 'wgan_gp'?)", "5:57"),
    ("gan_missing_noise", BASE + "training:\n  gan: {generator: g, discriminator: d}\n",
     "missing required key 'noise' in training.gan", "5:8"),
    ("per_network_optimizer", BASE + "training:\n  optimizer: {g: 5}\n",
     "training.optimizer.g must be a string, not an integer (5)", "5:18"),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "message", "where"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_is_reported_and_located(text: str, message: str, where: str) -> None:
    diag = only(text)
    assert message in diag.message
    assert str(diag.loc).endswith(f":{where}"), (str(diag.loc), diag.message)
    assert str(diag.loc).startswith("spec.yaml:")
    assert diag.severity == "error"


def test_messages_never_show_jsonschema_reprs() -> None:
    for _, text, _, _ in CASES:
        for diag in diagnostics(text):
            for raw in ("is not of type", "is not valid under", "does not match", "{'"):
                assert raw not in diag.message, diag.message


# ------------------------------------------------------------------------------ hints


def hint_of(text: str) -> str:
    return only(text).hint or ""


def test_missing_key_hint_shows_an_example() -> None:
    assert "model: [dense(10)]" in hint_of(HEAD)
    assert "shape: [B, 784]" in hint_of(BASE + "inputs:\n  x: {dtype: int64}\n")


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    hint = hint_of(BASE + "training:\n  colour: red\n")
    assert "allowed keys:" in hint and "optimizer" in hint and "batch_size" in hint
    assert only(BASE + "training:\n  epoch: 3\n").hint is None


def test_yaml_pitfall_hints() -> None:
    assert "quote" in hint_of(BASE + "training:\n  early_stopping: {monitor: true}\n")
    assert "without quotes" in hint_of(BASE + "training:\n  weight_decay: '1e-4'\n")
    assert "version 1" in hint_of("dlc: 3\nname: m\nmodel: [relu]\n")


def test_framework_habit_hints() -> None:
    assert "adam(lr=" in hint_of(BASE + "training:\n  lr: 0.1\n")
    split = diagnostics(HEAD + "model: [conv2d(8, 3, stride=2), relu]\n")  # 'conv2d(8', 3, ..
    assert [d.message for d in split] == ["model[1] must be a string, not an integer (3)"]
    assert "own line" in (split[0].hint or "")


# ------------------------------------------------------------------- several at once


def test_every_unknown_key_is_reported() -> None:
    found = diagnostics(BASE + "training:\n  epoch: 3\n  lr: 0.1\n  optimiser: adam\n")
    assert [str(d.loc).split(":", 1)[1] for d in found] == ["5:3", "6:3", "7:3"]
    assert [d.message.split("'")[1] for d in found] == ["epoch", "lr", "optimiser"]
    assert "did you mean 'optimizer'" in found[2].message


def test_independent_errors_are_all_reported_sorted_and_unique() -> None:
    text = (
        "dlc: 2\n"  # 1: const
        "name: 2x\n"  # 2: pattern
        "modle: [relu]\n"  # 3: unknown key (and model is missing: 1:1)
        "inputs:\n"
        "  x: [B, 0]\n"  # 5: dim
        "  y: {shape: [B], dtyp: f}\n"  # 6: unknown key
        "training:\n"
        "  epochs: ten\n"  # 8: type
        "  device: gpu\n"  # 9: enum
        "  data: {val_split: 2}\n"  # 10: range
        "export: {opset: 6}\n"  # 11: range
    )
    found = diagnostics(text)
    spots = [(d.loc.line, d.loc.col) for d in found]
    assert spots == sorted(spots)
    assert len(found) == len(set(found)) == 10
    assert [line for line, _ in spots] == [1, 1, 2, 3, 5, 6, 8, 9, 10, 11]
    assert found[0].message == "missing required key 'model'"


def test_schema_error_is_a_dlc_error_and_renders_with_context() -> None:
    with pytest.raises(DlcError) as info:
        validate(load_text(BASE + "training:\n  epoch: 3\n", "spec.yaml"))
    assert isinstance(info.value, SchemaError)
    rendered = info.value.render()
    assert rendered.startswith("spec.yaml:5:3: error: unknown key 'epoch' in training")
    assert "  epoch: 3" in rendered and "^" in rendered


# ------------------------------------------------------------------------- the schema


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(load_schema())
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert load_schema()["$id"].startswith("https://")


def test_schema_is_the_packaged_one() -> None:
    import json

    assert load_schema() == json.loads((REPO / "schema" / "spec.schema.json").read_text("utf-8"))


def _subschemas(node: object, where: str = "#") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key in ("examples", "default", "const", "enum"):
                continue
            yield from _subschemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, f"{where}/{i}")


def test_every_property_has_a_description() -> None:
    missing = [
        f"{where}/properties/{name}"
        for where, node in _subschemas(load_schema())
        for name, prop in (node.get("properties") or {}).items()
        if not (isinstance(prop, dict) and prop.get("description"))
    ]
    assert missing == []


def test_every_fixed_key_object_is_closed() -> None:
    open_objects = [
        where
        for where, node in _subschemas(load_schema())
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_fast_validator_reports_exactly_what_jsonschema_reports() -> None:
    plain = Draft202012Validator(load_schema())
    texts = [FULL_SPEC] + [c[1] for c in CASES]
    for text in texts:
        data = load_text(text).data
        assert _error_set(fast_validator(), data) == _error_set(plain, data), text


def _error_set(validator: Draft202012Validator, data: object) -> list[tuple]:
    def flat(errors) -> Iterator[tuple]:
        for e in errors:
            yield (tuple(e.absolute_path), tuple(e.absolute_schema_path), e.validator, e.message)
            yield from flat(e.context or [])

    return sorted(flat(validator.iter_errors(data)), key=repr)


# ------------------------------------------------------------------------------- size


def test_ten_thousand_node_graph_validates() -> None:
    nodes = [f"  n{i}: n{i - 1} -> dense(16) -> relu" for i in range(1, 10_000)]
    text = "\n".join([HEAD + "inputs: {x: [B, 16]}", "model:", "  n0: x -> dense(16)", *nodes])
    validate(load_text(text, "big.yaml"))
