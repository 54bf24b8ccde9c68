"""What a torch rule returns (`Lowered`), and the small helpers the families' rules share.

A torch rule (`ops/<family>/torch.py`, `TORCH_RULES`) gets an IR node and its input
types and says what the node becomes in the fx graph: a module to construct (class and
arguments, so `model_py` can write the same constructor into a standalone file), a
function, or a method, and with which extra arguments. torch.py builds the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..ir import Node, TensorType


@dataclass(frozen=True)
class Lowered:
    """What one IR node becomes in the fx graph."""

    module: type[nn.Module] | None = None  # a module constructed with ctor_args/ctor_kwargs
    ctor_args: tuple[Any, ...] = ()
    ctor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    fn: Callable[..., Any] | None = None  # or a function called on the inputs
    method: str | None = None  # or a method of the first input
    call_args: tuple[Any, ...] = ()  # extra positional arguments after the inputs
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments of the call
    passthrough: bool = False  # the op is the identity: its value is its input
    # The call returns a tuple: the node's value is this item of it (its other items are
    # there for nodes that `take` them: a recurrent net's final state).
    item: int | None = None
    # Nothing is called: the node's value is this item of the tuple that the call of its
    # input's node returned (an `item` node), so nothing is computed twice.
    take: int | None = None


Rule = Callable[[Node, tuple[TensorType, ...]], Lowered]


@dataclass(frozen=True)
class Size:
    """`x.size(axis)` of the op's first input, as an argument."""

    axis: int


@dataclass(frozen=True)
class Attr:
    """A parameter of another node's module (`emb.weight`), as an argument: an fx
    get_attr, so a weight shared by two nodes is held, and trained, once."""

    path: str


def fn(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Rule:
    """A function called on the inputs and these extra arguments."""
    return lambda node, ins: Lowered(fn=f, call_args=args, call_kwargs=kwargs)


def attrs_fn(f: Callable[..., Any], **names: str) -> Rule:
    """A function whose keyword arguments are node attributes (`dim="axis"`)."""
    return lambda node, ins: Lowered(fn=f, call_kwargs={k: node.attr(a) for k, a in names.items()})


def features(ins: tuple[TensorType, ...]) -> int:
    """The last axis of the first input, which shape inference made concrete."""
    f = ins[0].shape[-1]
    assert isinstance(f, int), "shape inference guarantees a concrete feature axis"
    return f


def channels(ins: tuple[TensorType, ...]) -> int:
    """Axis 1 of the first input, which shape inference made concrete."""
    c = ins[0].shape[1]
    assert isinstance(c, int), "shape inference guarantees a concrete channel count"
    return c
