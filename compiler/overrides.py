"""`--set` overrides: a spec's params and training options replaced from the command line.

`--set name=value` replaces a param (its value keeps the param's kind: a number stays a
number, a string param takes any text); `--set training.key=value` replaces a plain
training option or one of the expression-valued ones (loss, optimizer, schedule, init),
checked against the schema's property for that key. Every mistake is a `UsageError`
located in the `--set` text, and all of them are reported together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from jsonschema import Draft202012Validator

from ..schema import load_schema
from .errors import Collector, Loc, Source, UsageError, did_you_mean
from .loader import load_text
from .spec import LossTerm, Spec, Text, TrainingSpec

# Training keys whose value is an expression string, not a plain option.
_TRAINING_TEXTS = ("optimizer", "schedule", "init", "loss")
# Training keys whose value is a mapping or a list: a `key=value` cannot write them.
_NOT_SETTABLE = ("data", "early_stopping", "metrics")


def parse_override(text: str) -> tuple[str, Any, Loc]:
    """`name=value` as (name, the value as a YAML-like scalar, the name's location)."""
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
        text_value = _override_text(value) if isinstance(value, str) else None
        params[name] = replace(old, value=value, text=text_value)
    if training and spec.training is None:
        errors.add("--set training.*: the spec has no training section", None)
    errors.raise_if_any()
    spec = replace(spec, params=tuple(params.values()))
    if training and spec.training is not None:
        spec = replace(spec, training=_override_training(spec.training, training))
    return spec


def _training_value(name: str, value: Any, loc: Loc) -> Any:
    """A `--set training.key=value` checked against the schema's property for that key."""
    key = name.removeprefix("training.")
    defs = load_schema()["$defs"]
    props = defs["training"]["properties"]
    if key not in props or key in _NOT_SETTABLE:
        settable = [k for k in props if k not in _NOT_SETTABLE]
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
    texts = {k: _override_text(str(values.pop(k))) for k in _TRAINING_TEXTS if k in values}
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


def _override_text(value: str) -> Text:
    """An expression given on the command line, as a `Text` of its own one-line document
    (its errors point into the `--set` value)."""
    doc = load_text(f"v: {value!r}" if value else "v: ''", "--set")
    return Text(value, ("v",), doc)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string"
