"""What a YAML scalar's text means in a spec: dlc's own resolution rules, and the tags.

A plain (unquoted, untagged) scalar resolves by YAML-1.2-core-like rules: `true`/`false`
(three spellings each) are booleans, `null`, `~` and the empty scalar are null, decimal,
hex (0x) and octal (0o) integers and floats (`3e-4`, `.inf`, `.nan`) are numbers, and
everything else is a string, so `yes`, `on` and `1_000` stay strings. A scalar with an
explicit standard tag (`!!int 3`) must fit its tag. The loader (loader.py) applies these
while it builds a document; quoted and block scalars are always strings.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

YAML_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MAP, SEQ = (
    YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
SCALAR_TAGS = {STR, INT, FLOAT, BOOL, NULL}

_CONSTANTS: dict[str, bool | None] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~", ""), None),
}
_TYPED_START = frozenset("0123456789+-.~tTfFnN")  # how a non-string plain scalar starts
_NUMBER = re.compile(
    r"(?P<int>[-+]?[0-9]+)|(?P<hex>0x[0-9a-fA-F]+)|(?P<oct>0o[0-7]+)"
    r"|(?P<float>[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<inf>[-+]?\.(?:inf|Inf|INF))|(?P<nan>\.(?:nan|NaN|NAN))"
)


def resolve_plain(text: str) -> Any:
    """A plain, untagged scalar's value by dlc's YAML-1.2-core-like rules."""
    if text and text[0] not in _TYPED_START:  # the common case: a string
        return text
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    match = _NUMBER.fullmatch(text)
    return _number(match) if match else text


def _number(match: re.Match[str]) -> int | float:
    text, kind = match.group(), match.lastgroup
    if kind == "int":
        if len(text.lstrip("+-")) > sys.get_int_max_str_digits():
            raise ValueError(f"integer too long (over {sys.get_int_max_str_digits()} digits)")
        return int(text)
    if kind in ("hex", "oct"):
        return int(text[2:], 16 if kind == "hex" else 8)
    if kind == "inf":
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if kind == "nan" else float(text)


def resolve_tagged(tag: str, text: str) -> Any:
    """A scalar with an explicit standard tag (!!int 3): its text must fit the tag."""
    value = resolve_plain(text)
    fits = {
        NULL: value is None,
        BOOL: isinstance(value, bool),
        INT: type(value) is int,
        FLOAT: type(value) in (int, float),
    }[tag]
    if not fits:
        raise ValueError(f"'{text}' is not a valid {short_tag(tag)}")
    return float(value) if tag == FLOAT else value


def short_tag(tag: str) -> str:
    return "!!" + tag[len(YAML_TAG) :] if tag.startswith(YAML_TAG) else tag
