"""Schema validation: check a loaded spec's structure against `schema/spec.schema.json`.

`validate(doc)` runs the JSON Schema (draft 2020-12) of a spec over a loaded `Document`
and raises one `SchemaError` carrying a `Diagnostic` for every independent mistake it
finds. It guarantees:

- every diagnostic is located in the spec file: at the key for an unknown or badly named
  key, at the mapping's start for a missing key (line 1, column 1 at top level), at the
  value otherwise;
- messages use the spec's own dotted paths (`training.data.val_split`, `model[2]`,
  `inputs.x.shape[1]`) and plain words, never jsonschema's raw reprs; one diagnostic per
  unknown key, with a did-you-mean suggestion or the list of allowed keys;
- diagnostics come sorted by (line, column), without duplicates;
- it is fast: the schema (read once by `dlc.schema`) runs through the compiled validator
  of `fastschema.py`, built once per process.

jsonschema errors are translated into diagnostics in exactly one place, `_translate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema.exceptions import ValidationError

from ..schema import load_schema
from .errors import Diagnostic, Loc, SchemaError, did_you_mean
from .fastschema import fast_validator

if TYPE_CHECKING:  # validation needs only a Document's data, loc() and key_loc()
    from .loader import Document

Path = tuple[str | int, ...]
Handler = Callable[[ValidationError, Path, "Document"], list[Diagnostic]]

__all__ = ["validate"]


# --------------------------------------------------------------------------- public API


def validate(doc: Document) -> None:
    """Check `doc` against the spec schema; raise `SchemaError` with every mistake found."""
    diagnostics: list[Diagnostic] = []
    for error in fast_validator().iter_errors(doc.data):
        diagnostics.extend(_translate(error, doc))
    if diagnostics:
        raise SchemaError(_sorted_unique(diagnostics))


def _sorted_unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic) -> tuple[int, int, str]:
        return (d.loc.line, d.loc.col, d.message) if d.loc else (0, 0, d.message)

    return list(dict.fromkeys(sorted(diagnostics, key=key)))


# ---------------------------------------------------------------------- the translation


def _translate(error: ValidationError, doc: Document) -> list[Diagnostic]:
    """The diagnostics for one jsonschema error (the only place errors become messages)."""
    path: Path = tuple(error.absolute_path)
    if "propertyNames" in error.relative_schema_path:
        return [_bad_key(error, path, doc)]
    handler = _HANDLERS.get(str(error.validator), _other)
    return handler(error, path, doc)


def _unknown_keys(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    allowed = list(error.schema.get("properties", {}))
    out = []
    for key in error.instance:
        if key in allowed:
            continue
        where = "top-level key" if not path else "key"
        place = "" if not path else f" in {_where(doc, path)}"
        suggestion = did_you_mean(str(key), allowed)
        hint = _KEY_HINTS.get((path, str(key)))
        if hint is None and not suggestion:
            hint = f"allowed keys: {', '.join(allowed)}"
        message = f"unknown {where} '{key}'{place}{suggestion}"
        out.append(Diagnostic(message, doc.key_loc((*path, key)), hint))
    return out


def _missing_keys(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    # jsonschema reports each missing key separately; reporting all of them each time and
    # de-duplicating later keeps this independent of its message wording.
    loc = Loc(doc.source, 1, 1) if not path else doc.loc(path)
    place = "" if not path else f" in {_where(doc, path)}"
    properties = error.schema.get("properties", {})
    if not path:  # the top level's `then: {required: [model]}` (no networks:) has none
        properties = {**load_schema()["properties"], **properties}
    out = []
    for key in error.validator_value:
        if key in error.instance:
            continue
        example = _example(key, properties.get(key, {}))
        hint = f"add it, for example `{example}`" if example else None
        out.append(Diagnostic(f"missing required key '{key}'{place}", loc, hint))
    return out


def _wrong_type(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    expected = error.validator_value
    kinds = [expected] if isinstance(expected, str) else list(expected)
    nouns = _either([_type_noun(k, alone=len(kinds) == 1) for k in kinds])
    message = f"{_where(doc, path)} must be {nouns}, not {_a(error.instance)}"
    hint = _split_list_hint(doc, path) or _type_hint(kinds, error.instance)
    return [Diagnostic(message, doc.loc(path), hint)]


def _not_in_enum(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    choices = [_flow(c) for c in error.validator_value]
    value = error.instance
    suggestion = _suggest(value, error.validator_value) if isinstance(value, str) else ""
    message = (
        f"{_where(doc, path)} must be one of {', '.join(choices)}, not {_value(value)}{suggestion}"
    )
    return [Diagnostic(message, doc.loc(path))]


def _not_const(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    expected = error.validator_value
    message = f"{_where(doc, path)} must be {_value(expected)}, not {_value(error.instance)}"
    hint = "this compiler reads version 1 of the spec language" if path == ("dlc",) else None
    return [Diagnostic(message, doc.loc(path), hint)]


def _out_of_range(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    bound = _range_words(error.schema) or (
        f"{_BOUND_WORDS[str(error.validator)]} {_value(error.validator_value)}"
    )
    message = f"{_where(doc, path)} must be {bound}, not {_value(error.instance)}"
    return [Diagnostic(message, doc.loc(path))]


def _bad_pattern(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    kind = _pattern_kinds().get(str(error.validator_value))
    where = _where(doc, path)
    if kind == "expr":
        return [Diagnostic(f"{where} must not be blank", doc.loc(path))]
    if kind in _PATTERN_TEXT:
        message = f"{where}: '{_short(error.instance)}' {_PATTERN_TEXT[kind]}"
    else:
        message = f"{where}: '{_short(error.instance)}' does not have the expected form"
    return [Diagnostic(message, doc.loc(path))]


def _bad_key(error: ValidationError, path: Path, doc: Document) -> Diagnostic:
    """A mapping key that fails `propertyNames` (located at the key itself)."""
    key = error.instance
    kind = _pattern_kinds().get(str(error.schema.get("pattern")), "identifier")
    text = _PATTERN_TEXT.get(kind, _PATTERN_TEXT["identifier"])
    message = f"key '{_short(key)}' in {_where(doc, path)} {text}"
    return Diagnostic(message, doc.key_loc((*path, key)))


def _too_small(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    n = error.validator_value
    unit = {"minItems": "items", "minProperties": "entries", "minLength": "characters"}
    where = _where(doc, path)
    if n == 1:
        message = f"{where} must not be empty"
    else:
        message = f"{where} must have at least {n} {unit.get(str(error.validator), 'items')}"
    return [Diagnostic(message, doc.loc(path), _examples_hint(error.schema, path))]


def _too_big(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    unit = {"maxItems": "items", "maxProperties": "entries", "maxLength": "characters"}
    message = (
        f"{_where(doc, path)} must have at most {error.validator_value} "
        f"{unit.get(str(error.validator), 'items')}"
    )
    return [Diagnostic(message, doc.loc(path))]


def _no_alternative(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    """`anyOf`/`oneOf`: report inside the alternative of the value's kind, or summarize.

    A mapping or list whose kind one alternative accepts gets that alternative's own
    errors (an unknown key, a bad item); a scalar, or a value of a kind no alternative
    accepts, gets one message naming what is allowed.
    """
    context = list(error.context or [])
    plausible = [e for e in context if not _kind_mismatch(e)]
    if plausible and isinstance(error.instance, (dict, list)):
        return [d for e in _closest_branch(plausible) for d in _translate(e, doc)]
    allowed = _alternatives(error)
    where = _where(doc, path)
    if not context:  # oneOf: valid under several alternatives
        message = f"{where} is ambiguous: it matches more than one of {allowed}"
        return [Diagnostic(message, doc.loc(path))]
    shown = _value(error.instance) if plausible else _a(error.instance)
    hint = _type_hint(_branch_kinds(error), error.instance) if not plausible else None
    return [Diagnostic(f"{where} must be {allowed}, not {shown}", doc.loc(path), hint)]


def _other(error: ValidationError, path: Path, doc: Document) -> list[Diagnostic]:
    return [Diagnostic(f"{_where(doc, path)}: {error.message}", doc.loc(path))]


_HANDLERS: dict[str, Handler] = {
    "additionalProperties": _unknown_keys,
    "required": _missing_keys,
    "type": _wrong_type,
    "enum": _not_in_enum,
    "const": _not_const,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "exclusiveMinimum": _out_of_range,
    "exclusiveMaximum": _out_of_range,
    "pattern": _bad_pattern,
    "minItems": _too_small,
    "minProperties": _too_small,
    "minLength": _too_small,
    "maxItems": _too_big,
    "maxProperties": _too_big,
    "maxLength": _too_big,
    "anyOf": _no_alternative,
    "oneOf": _no_alternative,
}


# -------------------------------------------------------------------- wording helpers

_TYPE_NOUNS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}

_BOUND_WORDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}

# What a value matching each pattern-bearing $def looks like, keyed by the $def's name.
_PATTERN_TEXT = {
    "identifier": "is not a valid name: use letters, digits and _, not starting with a digit",
    "blockSignature": "is not a valid block signature: write name or name(arg, arg=default)",
    "dimExpr": "is not a valid dimension: use a positive integer, a name like B "
    "or an expression like T*2",
}

# Values people write for an enum that a spelling match would not find.
_ALIASES = {
    "gpu": "cuda",
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "boolean": "bool",
    "fp64": "float64",
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "multiclass": "classification",
    "binary_classification": "binary",
    "minimize": "min",
    "maximize": "max",
}

# Hints for keys people bring from other frameworks, keyed by (mapping path, key).
_LR_HINT = "set it in the optimizer's call, e.g. optimizer: adam(lr=0.001)"
_KEY_HINTS: dict[tuple[Path, str], str] = {
    (("training",), "lr"): _LR_HINT,
    (("training",), "learning_rate"): _LR_HINT,
    (("training",), "momentum"): "set it in the optimizer's call, e.g. sgd(lr=0.1, momentum=0.9)",
    (("training",), "dataset"): "name the data under data: {train: builtin:digits}",
    (("training",), "loss_weights"): "write the loss as a list of {loss, output, weight} terms",
}

_SIMPLE_KEY = re.compile(r"^[^.\[\]'\s]+$")


def _where(doc: Document, path: Path) -> str:
    """The dotted path of a value in the spec's own keys: `training.data.val_split`."""
    if not path:
        return "the spec"
    out, node = "", doc.data
    for part in path:
        if isinstance(node, list) and isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not _SIMPLE_KEY.match(part) and part:
            out += f"['{part}']"
        else:
            out += f".{part}" if out else str(part)
        node = _child(node, part)
    return out


def _child(node: Any, part: str | int) -> Any:
    try:
        return node[part]
    except (KeyError, IndexError, TypeError):
        return None


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value(value: Any) -> str:
    """A value as the user would write it in YAML: 'gpu', 0.5, true, null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{_short(value)}'"
    if isinstance(value, (int, float)):
        return str(value)
    return _a(value)


def _a(value: Any) -> str:
    """A value described by its kind: a string ('ten'), an integer (5), a mapping."""
    if isinstance(value, bool):
        return f"a boolean ({_value(value)})"
    if value is None:
        return "an empty value (null)"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ('{_short(value)}')"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _type_noun(kind: str, *, alone: bool = True) -> str:
    if kind == "boolean" and not alone:
        return "a boolean"
    return _TYPE_NOUNS.get(kind, kind)


def _either(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _suggest(value: str, choices: Iterable[Any]) -> str:
    names = [c for c in choices if isinstance(c, str)]
    folded = value.strip().lower()
    if folded in names and folded != value:
        return f" (did you mean '{folded}'?)"
    if _ALIASES.get(folded) in names:
        return f" (did you mean '{_ALIASES[folded]}'?)"
    return did_you_mean(value, names)


def _type_hint(kinds: Iterable[str], value: Any) -> str | None:
    kinds = set(kinds)
    if "string" in kinds and isinstance(value, bool):
        return "an unquoted true or false is a boolean in YAML: quote it to mean the text"
    if kinds == {"string"} and isinstance(value, dict):
        return "a ': ' inside an unquoted YAML string starts a mapping: quote the string"
    if value is None:
        return "the value is empty: write one after the colon"
    if kinds & {"number", "integer"} and isinstance(value, str) and _is_number(value):
        return f"write the number without quotes: {value.strip()}"
    return None


def _split_list_hint(doc: Document, path: Path) -> str | None:
    """A hint when a flow list `[conv2d(c, 3), relu]` was split at a call's commas."""
    parent = _at(doc.data, path[:-1]) if path else None
    if not isinstance(parent, list):
        return None
    if any(isinstance(s, str) and s.count("(") != s.count(")") for s in parent):
        return (
            "a comma inside [...] separates list items, also inside a call: put each "
            "layer on its own line (- conv2d(c, 3)) or quote it"
        )
    return None


def _at(data: Any, path: Path) -> Any:
    for part in path:
        data = _child(data, part)
    return data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _range_words(node: Mapping[str, Any]) -> str | None:
    """'from 7 to 23' or 'between 0 and 1 (exclusive)' when the schema bounds both ends."""
    if "minimum" in node and "maximum" in node:
        return f"from {_value(node['minimum'])} to {_value(node['maximum'])}"
    if "exclusiveMinimum" in node and "exclusiveMaximum" in node:
        lo, hi = _value(node["exclusiveMinimum"]), _value(node["exclusiveMaximum"])
        return f"between {lo} and {hi} (exclusive)"
    return None


def _example(key: str, node: Mapping[str, Any]) -> str | None:
    examples = node.get("examples")
    return f"{key}: {_flow(examples[0])}" if examples else None


def _examples_hint(node: Mapping[str, Any], path: Path) -> str | None:
    if not path or not node.get("examples"):
        return None
    return f"for example `{_example(str(path[-1]), node)}`"


def _flow(value: Any) -> str:
    """A value in YAML flow style: [B, 784], {hidden: 256}, dense(10)."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return value
    return _value(value)


# ------------------------------------------------------------ schema structure helpers


@lru_cache(maxsize=1)
def _pattern_kinds() -> dict[str, str]:
    """pattern -> the name of the $def that declares it (identifier, dimExpr, ...)."""
    defs = load_schema().get("$defs", {})
    return {d["pattern"]: name for name, d in defs.items() if "pattern" in d}


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return load_schema()["$defs"].get(ref.removeprefix("#/$defs/"), node)
    return node


def _kind_mismatch(error: ValidationError) -> bool:
    """True when an alternative failed only because the value is of another kind."""
    return error.validator == "type" and not error.relative_path


def _closest_branch(errors: list[ValidationError]) -> list[ValidationError]:
    """The errors of the alternative the value came closest to matching.

    Alternatives are told apart by kind, so usually only one is left; otherwise the one
    whose errors lie deepest in the value (it matched the most) wins, then the one with
    the fewest errors.
    """
    branches: dict[Any, list[ValidationError]] = {}
    for e in errors:
        branches.setdefault(e.relative_schema_path[0], []).append(e)

    def closeness(group: list[ValidationError]) -> tuple[int, int]:
        return (max(len(e.relative_path) for e in group), -len(group))

    return max(branches.values(), key=closeness)


def _alternatives(error: ValidationError) -> str:
    """What an anyOf/oneOf accepts, in words (its title, or its branches' titles)."""
    if error.schema.get("title"):
        return str(error.schema["title"])
    words = []
    for branch in error.validator_value:
        title = branch.get("title") or _resolve(branch).get("title")
        kind = _resolve(branch).get("type")
        words.append(title or _TYPE_NOUNS.get(str(kind), "a value of another form"))
    return _either(words)


def _branch_kinds(error: ValidationError) -> list[str]:
    kinds = []
    for branch in error.validator_value:
        kind = _resolve(branch).get("type")
        kinds.extend([kind] if isinstance(kind, str) else list(kind or []))
    return kinds
