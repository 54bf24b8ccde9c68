"""Names during elaboration: environments, naming scopes, and deferred arguments.

`Env` maps the names an expression may use (params and block arguments as constants,
inputs and graph nodes as tensors) and chains to the environment it was written in; an
`IndexEnv` is the one link that binds the index of one copy of `repeat(n, i -> ...)`.
`Scope` hands out the dotted IR node names (`body.repeat.0.dense_1`). A `Thunk` is a
block argument kept unevaluated until it is used, so one argument can be a number or a
whole sub-network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Loc
from .spec import Body
from .syntax import Expr, Signature

CONSTANTS = {"true": True, "false": False, "none": None, "null": None}


class Reported(Exception):
    """Something this depends on failed and was reported already: skip it quietly."""


@dataclass(frozen=True, slots=True)
class Word:
    """A bare name that resolved to nothing, and where it was written. Not a string on
    purpose: it stays inside elaboration, which turns it into its text where an argument
    takes words (`padding=same`) and reports an unknown name at `loc` anywhere else."""

    text: str
    loc: Loc


@dataclass
class Block:
    """A block definition: its signature, its body and where it was defined."""

    signature: Signature
    body: Body
    loc: Loc


@dataclass(frozen=True)
class Thunk:
    """An unevaluated expression with the environment it was written in."""

    expr: Expr
    env: Env


@dataclass
class Env:
    """Names visible to an expression: constants (params, block args) and tensors."""

    consts: dict[str, Any]
    tensors: dict[str, str]  # spec name -> IR value name
    parent: Env | None = None

    def const(self, name: str) -> tuple[bool, Any]:
        env: Env | None = self
        while env is not None:
            if name in env.consts:
                return True, env.consts[name]
            env = env.parent
        return False, None

    def tensor(self, name: str) -> str | None:
        return self.tensors.get(name)

    def names(self) -> set[str]:
        out: set[str] = set(self.tensors)
        env: Env | None = self
        while env is not None:
            out |= set(env.consts)
            env = env.parent
        return out


class IndexEnv(Env):
    """One copy of `repeat(n, i -> body)`: the index name bound to the copy's number, over
    the environment the body was written in (sharing its tensors). A class of its own so
    that a later repeat can tell an enclosing index from a param or a block argument."""


@dataclass
class Scope:
    """Allocates unique dotted node names under a prefix."""

    prefix: str
    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)  # the next suffix to try per base

    def fresh(self, base: str) -> str:
        """`base`, else `base_1`, `base_2`, ...: the first name not used yet."""
        name, i = base, self.counters.get(base, 0)
        if i:
            name = f"{base}_{i}"
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.counters[base] = i + 1
        self.used.add(name)
        return name

    def full(self, local: str) -> str:
        return f"{self.prefix}.{local}" if self.prefix else local

    def child(self, base: str) -> Scope:
        return Scope(self.full(self.fresh(base)))
