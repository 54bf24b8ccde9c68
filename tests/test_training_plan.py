"""The checked `training:` section's typed options (`TrainingPlan.options`).

What they pin down: a section that sets nothing gets the training runtime's defaults;
every plain key of the schema's `training` section has a typed field; the values come
typed (numbers as floats where the runtime computes with floats, lists as tuples, the
early-stopping and data mappings as dataclasses); full-batch training follows the
optimizer; data sources keep the place they were written; `--set training.key=value`
reaches the typed options; no raw mapping of the section reaches the runtime.
"""

from __future__ import annotations

import dataclasses

import pytest

from dlc.compiler.diffusion import DiffusionPlan
from dlc.compiler.pipeline import check_text
from dlc.compiler.training import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DataOptions,
    EarlyStopping,
    TrainingOptions,
    TrainingPlan,
)
from dlc.schema import load_schema

HEAD = "dlc: 1\nname: t\ninputs: {x: [B, 4]}\nmodel: [dense(3)]\ntraining:\n"


def plan_of(training: str, overrides: tuple[str, ...] = ()) -> TrainingPlan:
    plan = check_text(HEAD + training, "t.yaml", overrides).training
    assert plan is not None
    return plan


def test_defaults_are_the_runtimes() -> None:
    options = plan_of("  loss: cross_entropy\n").options
    assert options == TrainingOptions()
    assert (options.epochs, options.batch_size) == (DEFAULT_EPOCHS, DEFAULT_BATCH) == (10, 32)
    assert options.steps is None and options.seed == 0
    assert (options.device, options.precision) == ("auto", "fp32")
    assert (options.warmup, options.weight_decay, options.l1) == (0, 0.0, 0.0)
    assert options.regularize_all is False and options.clip_grad_norm is None
    assert options.log_gradients is False
    assert options.early_stopping is None and options.task is None
    assert options.checkpoint_every == 2.0 and options.metrics == ()
    assert options.data == DataOptions()
    assert options.data.shuffle is True and options.data.train is None


def test_every_plain_key_of_the_schema_has_a_field() -> None:
    training = load_schema()["$defs"]["training"]["properties"]
    # training.gan is read by compiler/networks.py (GanPlan), diffusion is a section of
    # its own (TrainingPlan.diffusion, compiler/diffusion.py): neither is a plain option
    plain = set(training) - {"loss", "optimizer", "schedule", "init", "gan", "diffusion"}
    assert plain == {f.name for f in dataclasses.fields(TrainingOptions)}
    diffusion = set(load_schema()["$defs"]["diffusion"]["properties"])
    assert diffusion <= {f.name for f in dataclasses.fields(DiffusionPlan)}
    data = set(load_schema()["$defs"]["data"]["properties"])
    assert data <= {f.name for f in dataclasses.fields(DataOptions)}
    stopping = set(load_schema()["$defs"]["earlyStopping"]["properties"])
    assert stopping == {f.name for f in dataclasses.fields(EarlyStopping)}


EVERYTHING = """\
  loss: cross_entropy
  optimizer: sgd(lr=0.1, momentum=0.9)
  epochs: 3
  steps: 40
  batch_size: 16
  seed: 7
  device: cpu
  precision: bf16
  warmup: 5
  weight_decay: 0
  l1: 1
  regularize_all: true
  clip_grad_norm: 1
  early_stopping: {monitor: val_accuracy, patience: 2, min_delta: 0, restore_best: false,
                   mode: max}
  task: classification
  checkpoint_every: 0
  metrics: [accuracy, mae]
  data:
    train: builtin:moons
    val: builtin:moons(n=20)
    test: "builtin:moons(n=30)"
    val_split: 0.25
    test_split: 0.5
    shuffle: false
    target: label
    options: {n: 64}
  log_gradients: true
"""


def test_every_value_comes_typed() -> None:
    options = plan_of(EVERYTHING).options
    assert options == TrainingOptions(
        epochs=3,
        steps=40,
        batch_size=16,
        seed=7,
        device="cpu",
        precision="bf16",
        warmup=5,
        weight_decay=0.0,
        l1=1.0,
        regularize_all=True,
        clip_grad_norm=1.0,
        log_gradients=True,
        early_stopping=EarlyStopping("val_accuracy", 2, 0.0, False, "max"),
        task="classification",
        data=dataclasses.replace(
            options.data,  # the places are checked below
            train="builtin:moons",
            val="builtin:moons(n=20)",
            test="builtin:moons(n=30)",
            val_split=0.25,
            test_split=0.5,
            shuffle=False,
            target="label",
            options=(("n", 64),),
        ),
        checkpoint_every=0.0,
        metrics=("accuracy", "mae"),
    )
    for value in (options.weight_decay, options.l1, options.clip_grad_norm,
                  options.checkpoint_every, options.early_stopping.min_delta):  # fmt: skip
        assert type(value) is float


def test_data_sources_keep_their_place() -> None:
    data = plan_of(EVERYTHING).options.data
    assert data.train_loc is not None and data.val_loc is not None and data.test_loc is not None
    places = [(loc.line, loc.col) for loc in (data.train_loc, data.val_loc, data.test_loc)]
    assert places == [(25, 12), (26, 10), (27, 12)]  # the quoted one at its content
    only_train = plan_of("  loss: mse\n  data: {train: builtin:xor}\n").options.data
    assert only_train.train_loc is not None and (only_train.val_loc, only_train.test_loc) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("training", "batch"),
    [
        ("  optimizer: gd\n", None),
        ("  optimizer: gd\n  batch_size: 8\n", None),  # gd is full batch by definition
        ("  optimizer: lbfgs\n", None),
        ("  optimizer: lbfgs\n  batch_size: 8\n", 8),
        ("  optimizer: newton\n", None),
        ("  optimizer: adam\n  batch_size: full\n", None),
        ("  optimizer: adam\n", DEFAULT_BATCH),
        ("  loss: mse\n", DEFAULT_BATCH),  # the default optimizer, adam
    ],
)
def test_full_batch_follows_the_optimizer(training: str, batch: int | None) -> None:
    assert plan_of(training).options.batch_size == batch


def test_an_empty_early_stopping_stops_nothing() -> None:
    assert plan_of("  loss: mse\n  early_stopping: {}\n").options.early_stopping is None
    es = plan_of("  loss: mse\n  early_stopping: {patience: 3}\n").options.early_stopping
    assert es == EarlyStopping(patience=3)
    assert (es.monitor, es.mode, es.restore_best) == (None, None, True)


def test_set_reaches_the_typed_options() -> None:
    plan = plan_of("  loss: mse\n  epochs: 4\n", ("training.epochs=9", "training.batch_size=full"))
    assert (plan.options.epochs, plan.options.batch_size) == (9, None)
    plan = plan_of("  loss: mse\n", ("training.optimizer=gd",))
    assert plan.optimizer.name == "gd" and plan.options.batch_size is None


def _plain_values(value: object) -> list[object]:
    """Every value inside a dataclass, tuple or mapping, nested ones included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, tuple):
        inner = list(value)
    else:
        return [value]
    return [value] + [v for item in inner for v in _plain_values(item)]


def test_no_raw_mapping_reaches_the_runtime() -> None:
    """The runtime reads the typed options only: the plan holds no dict of the spec's
    `training:` section, and what the spec wrote arrives typed."""
    plan = plan_of(EVERYTHING)
    assert not hasattr(plan, "option") and not hasattr(plan, "raw_options")
    assert not any(isinstance(v, dict) for v in _plain_values(plan))
    options = plan.options
    assert options.epochs == 3 and options.weight_decay == 0
    assert options.early_stopping is not None
    assert options.early_stopping.monitor == "val_accuracy"
    assert dict(options.data.options) == {"n": 64}
    assert plan_of("  loss: mse\n").options.epochs == 10
