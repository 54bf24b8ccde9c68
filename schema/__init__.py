"""The language definition of dlc specs, shipped as package data.

`spec.schema.json` is the JSON Schema (draft 2020-12) of a spec document; `expr.lark`
is the lark grammar of the expression strings inside it. Both are read from the
installed package, so `dlc schema` prints exactly what the validator uses.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def schema_text() -> str:
    return _read("spec.schema.json")


@cache
def load_schema() -> dict:
    return json.loads(schema_text())


@cache
def grammar_text() -> str:
    return _read("expr.lark")
