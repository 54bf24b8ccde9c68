"""The argument tables of `training:` (compiler/training.py's TABLES), applied at run time.

`bind_args` completes a loss's, optimizer's or schedule's arguments with the table's
defaults, so the builders in losses.py, optimizers.py and schedules.py can be called
with only some arguments (as tests and benchmarks do), and a name or an argument the
tables do not know is a `TrainError` here rather than a `KeyError` deeper down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...compiler.errors import TrainError, did_you_mean
from ...compiler.training import TABLES


def bind_args(kind: str, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """`args` completed with the table's defaults for `kind` ('loss', 'optimizer',
    'schedule'). The trainer passes arguments the front end already bound; this lets a
    caller pass only some, and catches a name or argument the tables do not know."""
    table = TABLES[kind]
    if name not in table:
        raise TrainError(f"unknown {kind} '{name}'{did_you_mean(name, table)}")
    sig = table[name]
    known = [a.name for a in sig]
    for key in args:
        if key not in known:
            raise TrainError(
                f"{kind} {name} has no argument '{key}'{did_you_mean(key, known)}",
                hint=f"arguments: {', '.join(a.name for a in sig) or 'none'}",
            )
    bound: dict[str, Any] = {}
    for a in sig:
        if a.name in args:
            bound[a.name] = args[a.name]
        elif a.required:
            raise TrainError(f"{kind} {name} needs the argument '{a.name}'")
        else:
            bound[a.name] = a.default
    return bound
