"""The front end as one call: load, validate, read, elaborate, infer shapes.

    spec.yaml --load--> Document --validate--> Spec --elaborate--> Graph --shapes--> typed Graph

`check_file` and `check_text` return a `Checked` model (the spec, the typed IR graph and
the warnings) or raise the `DlcError` of the first phase that failed, carrying every
independent diagnostic of that phase. No torch, no onnx: this is what `dlc check` runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .elaborate import elaborate
from .errors import Collector, Diagnostic, Loc, Source, UsageError, did_you_mean
from .ir import Graph, InitSpec
from .loader import Document, gc_paused, load_file, load_text
from .shapes import infer_shapes
from .spec import LossTerm, ParamDef, Spec, TrainingSpec, read_spec
from .training import TrainingPlan, check_loss_outputs
from .validate import validate
from .verify import verify


@dataclass(frozen=True)
class Checked:
    spec: Spec
    graph: Graph
    warnings: tuple[Diagnostic, ...]
    default_init: InitSpec | None = None
    export_outputs: tuple[tuple[str, str], ...] = ()  # more outputs for the ONNX model
    training: TrainingPlan | None = None  # the checked `training:` section

    @property
    def source(self) -> Source:
        return self.spec.document.source


def check_file(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Checked:
    return check_document(load_file(path), overrides)


def check_text(text: str, name: str = "<string>", overrides: Sequence[str] = ()) -> Checked:
    return check_document(load_text(text, name), overrides)


def check_document(doc: Document, overrides: Sequence[str] = ()) -> Checked:
    with gc_paused():  # the front end's objects live until it returns; see loader.py
        return _check(doc, overrides)


def _check(doc: Document, overrides: Sequence[str]) -> Checked:
    validate(doc)
    spec = apply_overrides(read_spec(doc), overrides)
    elaborated = elaborate(spec)
    graph, init = elaborated.graph, elaborated.default_init
    typed, warnings = infer_shapes(graph, init)
    verify(typed, typed=True)
    if elaborated.training is not None:  # loss terms that read outputs: kl_normal(mu, logvar)
        check_loss_outputs(elaborated.training, typed)
    return Checked(spec, typed, warnings, init, elaborated.export_outputs, elaborated.training)


def parse_override(text: str) -> tuple[str, Any, Loc]:
    source = Source("--set", text)
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--set takes name=value, got '{text}'", Loc(source, 1, 1, len(text) + 1))
    return name, _scalar(raw.strip()), Loc(source, 1, 1, len(name) + 1)


def _scalar(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def apply_overrides(spec: Spec, overrides: Sequence[str]) -> Spec:
    """Replace params by `--set name=value` and training options by
    `--set training.key=value`; unknown names and type changes are errors."""
    if not overrides:
        return spec
    params = {p.name: p for p in spec.params}
    training: dict[str, Any] = {}
    errors = Collector(UsageError)
    for text in overrides:
        try:
            name, value, loc = parse_override(text)
        except UsageError as e:
            errors.extend(e)
            continue
        if name.startswith("training."):
            try:
                training[name.removeprefix("training.")] = _training_value(name, value, loc)
            except UsageError as e:
                errors.extend(e)
            continue
        old = params.get(name)
        if old is None:
            errors.add(
                f"--set names unknown param '{name}'{did_you_mean(name, params)}",
                loc,
                f"params of this spec: {', '.join(params) or 'none'}",
            )
            continue
        if _kind(old.value) != _kind(value) and not (
            _kind(old.value) == "number" and _kind(value) == "number"
        ):
            if _kind(old.value) == "string":
                value = str(value)
            else:
                errors.add(
                    f"--set {name}: expected a {_kind(old.value)} like the spec's "
                    f"{old.value!r}, got {value!r}",
                    loc,
                )
                continue
        text_value = None
        if isinstance(value, str):
            text_value = _override_text(value, old)
        params[name] = replace(old, value=value, text=text_value)
    if training and spec.training is None:
        errors.add("--set training.*: the spec has no training section", None)
    errors.raise_if_any()
    spec = replace(spec, params=tuple(params.values()))
    if training and spec.training is not None:
        spec = replace(spec, training=_override_training(spec.training, training))
    return spec


_TRAINING_TEXTS = ("optimizer", "schedule", "init", "loss")


def _training_value(name: str, value: Any, loc: Loc) -> Any:
    """A `--set training.key=value` checked against the schema's property for that key."""
    from jsonschema import Draft202012Validator

    from .validate import schema

    key = name.removeprefix("training.")
    defs = schema()["$defs"]
    props = defs["training"]["properties"]
    if key not in props or key in ("data", "early_stopping", "metrics"):
        settable = [k for k in props if k not in ("data", "early_stopping", "metrics")]
        raise UsageError(
            f"--set cannot set '{name}'{did_you_mean(name, ['training.' + k for k in settable])}",
            loc,
            f"settable: {', '.join('training.' + k for k in settable)}",
        )
    if key in _TRAINING_TEXTS:
        value = str(value)
    checker = Draft202012Validator({"$defs": defs, **props[key]})
    problem = next(iter(checker.iter_errors(value)), None)
    if problem is not None:
        raise UsageError(f"--set {name}: {problem.message}", loc)
    return value


def _override_training(t: TrainingSpec, values: dict[str, Any]) -> TrainingSpec:
    texts = {k: _override_text(str(values.pop(k)), None) for k in _TRAINING_TEXTS if k in values}
    options = dict(t.options)
    options.update(values)
    loss = t.loss
    if "loss" in texts:
        loss = (replace(t.loss[0], loss=texts["loss"]) if len(t.loss) == 1
                else LossTerm(texts["loss"]),)  # fmt: skip
    return replace(
        t,
        loss=loss,
        optimizer=texts.get("optimizer", t.optimizer),
        schedule=texts.get("schedule", t.schedule),
        init=texts.get("init", t.init),
        options=tuple(options.items()),
    )


def _override_text(value: str, old: ParamDef | None):  # noqa: ANN202
    from .spec import Text

    doc = load_text(f"v: {value!r}" if value else "v: ''", "--set")
    return Text(value, ("v",), doc)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string"
