"""The op registry: every op of the language, each defined once, in one `OpDef`.

An `OpDef` holds everything the front end knows about an op: its signature (`Arg`s with
types and defaults), how many tensors it takes, its shape rule, its parameters (names,
shapes, default init), its FLOP count, and traits the passes read (`int_inputs`,
`inference_identity`). It is frozen data: the lowerings do not touch it. They keep their
rules in tables keyed by the same op name, beside the OpDefs in each family's folder
(`ops/<family>/torch.py`, `onnx.py`); a test proves the tables cover the registry.

Combinators (`residual`, `repeat`, ...) are entries too, of kind "combinator": instead of
a shape rule they have an `expand` rule that elaboration calls to rewrite them into
plain ops, so they never reach the IR.

Rules receive an `OpCtx`: the node's input types and bound attributes, and `fail` /
`warn`, which report at the node's place in the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..arith import describe_value
from ..dims import Dim, is_sym
from ..errors import Diagnostic, Loc, ShapeError
from ..ir import InitSpec, Node, ParamSpec, TensorType

REQUIRED = object()  # marks an argument without a default


class ArgTypeError(Exception):
    """A value does not fit an argument's type; elaboration locates and reports it."""


@dataclass(frozen=True, slots=True)
class ArgType:
    """A named check-and-convert for argument values (`an integer >= 1`, `same|valid`)."""

    name: str
    coerce: Callable[[Any], Any]
    # value | init | body | tensor (a node an attribute names: tie=) | input (a tensor that
    # joins the node's inputs: attention's mask=) | state (tensors that join them: a
    # recurrent net's initial state, state_refs.py)
    kind: str = "value"
    words: bool = False  # takes bare words (`padding=same`), so an unknown name is a value


def _describe(v: Any) -> str:
    return describe_value(v, article="")


def _int(lo: int | None = None, name: str = "an integer") -> ArgType:
    def coerce(v: Any) -> int:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ArgTypeError(f"expected {name}, got {_describe(v)}")
        if lo is not None and v < lo:
            raise ArgTypeError(f"expected {name}, got {v}")
        return v

    return ArgType(name, coerce)


def _float(lo: float | None = None, hi: float | None = None, name: str = "a number") -> ArgType:
    def coerce(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ArgTypeError(f"expected {name}, got {_describe(v)}")
        if (lo is not None and v < lo) or (hi is not None and v >= hi):
            raise ArgTypeError(f"expected {name}, got {v}")
        return float(v)

    return ArgType(name, coerce)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ArgTypeError(f"expected true or false, got {_describe(v)}")
    return v


def choice(*options: str) -> ArgType:
    name = "|".join(options)

    def coerce(v: Any) -> str:
        if v is None and "none" in options:
            return "none"
        if not isinstance(v, str) or v not in options:
            raise ArgTypeError(f"expected one of {', '.join(options)}, got {_describe(v)}")
        return v

    return ArgType(name, coerce, words=True)


def one_of(*types: ArgType) -> ArgType:
    name = " or ".join(t.name for t in types)

    def coerce(v: Any) -> Any:
        for t in types:
            try:
                return t.coerce(v)
            except ArgTypeError:
                continue
        raise ArgTypeError(f"expected {name}, got {_describe(v)}")

    return ArgType(name, coerce, words=any(t.words for t in types))


def list_of(item: ArgType, name: str, min_len: int = 1) -> ArgType:
    def coerce(v: Any) -> tuple:
        if not isinstance(v, tuple) or len(v) < min_len:
            raise ArgTypeError(f"expected {name}, got {_describe(v)}")
        return tuple(item.coerce(x) for x in v)

    return ArgType(name, coerce)


def _dim(v: Any) -> Dim:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if is_sym(v) or (isinstance(v, int) and not isinstance(v, bool) and v >= -1):
        return v
    raise ArgTypeError(f"expected a dim (an integer, -1 or a symbol), got {_describe(v)}")


INT = _int()
POS_INT = _int(1, "an integer >= 1")
NONNEG_INT = _int(0, "an integer >= 0")
NUMBER = _float()
POS_NUMBER = _float(1e-300, None, "a number > 0")
PROB = _float(0.0, 1.0, "a probability in [0, 1)")
BOOL = ArgType("true|false", _bool)
INTS = list_of(INT, "a list of integers")
DIMS = list_of(ArgType("a dim", _dim), "a list of dims")
AXIS = INT
INIT = ArgType("an init scheme", lambda v: v, kind="init")
BODY = ArgType("a layer or pipeline", lambda v: v, kind="body")
TENSOR = ArgType("a tensor", lambda v: v, kind="tensor")
INPUT = ArgType("a tensor", lambda v: v, kind="input")
# An initial state: a node with a state (its parts) or tensors, one per part, that join
# the node's inputs; the node's attribute says whether one was given (state_refs.py).
INITIAL_STATE = ArgType("a recurrent node or tensors", lambda v: v, kind="state")


def _none(v: Any) -> None:
    if v is not None:
        raise ArgTypeError("expected none")


NONE = ArgType("none", _none)
OPTIONAL_INT = one_of(INT, NONE)  # an int, or none for "not given"
OPTIONAL_NUMBER = one_of(NUMBER, NONE)


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    type: ArgType
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class OpCtx:
    """What a rule sees: the node, its input types, its attributes, the default init."""

    node: Node
    inputs: tuple[TensorType, ...]
    default_init: InitSpec | None = None
    warnings: list[Diagnostic] = field(default_factory=list)
    # The graph's nodes up to this one, by name (untyped where a rule failed): for an
    # argument that names another node, as dense's tie= names an embedding.
    nodes: Mapping[str, Node] = field(default_factory=dict)

    @property
    def x(self) -> TensorType:
        return self.inputs[0]

    @property
    def loc(self) -> Loc | None:
        return self.node.loc

    def __getitem__(self, key: str) -> Any:
        return self.node.attr(key)

    def fail(self, message: str, hint: str | None = None) -> ShapeError:
        """Build the error for `raise ctx.fail(...)`, located at the node's spec text."""
        return ShapeError(message, self.loc, hint)

    def warn(self, message: str, hint: str | None = None) -> None:
        self.warnings.append(Diagnostic(message, self.loc, hint, "warning"))

    def init(self, key: str, fallback: InitSpec) -> InitSpec:
        """The init for a weight: the op's `init=` argument, the spec's default, else the op's."""
        chosen = self.node.attr(key) if any(k == key for k, _ in self.node.attrs) else None
        return chosen or self.default_init or fallback


@dataclass(frozen=True, slots=True)
class Example:
    """A test case of an op: `layer` on an input of `shape` (and `dtype`) gives `out`.

    `torch` is the equivalent `torch.nn` module as text (`"nn.Linear(784, 128)"`), which
    the tests evaluate: same parameter names and shapes. `parity`: the tests run the layer
    through torch, onnxruntime and onnx's reference evaluator (False for a row that only
    checks parameters)."""

    layer: str
    shape: str
    out: str
    dtype: str | None = None
    torch: str | None = None
    parity: bool = True


@dataclass(frozen=True, slots=True)
class Failure:
    """An error case of an op: `layer` on `shape` fails with `message` (a part of the
    rendered error) at column `col` of the layer text (1-based)."""

    layer: str
    message: str
    col: int
    shape: str = "[B, 16]"


ShapeRule = Callable[[OpCtx], TensorType]
ParamRule = Callable[[OpCtx, TensorType], tuple[ParamSpec, ...]]
FlopRule = Callable[[OpCtx, TensorType], Dim]


def no_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return ()


def no_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return 0


@dataclass(frozen=True, slots=True)
class OpDef:
    """One op of the language. See the module docstring."""

    name: str
    args: tuple[Arg, ...] = ()
    shape: ShapeRule | None = None
    params: ParamRule = no_params
    flops: FlopRule = no_flops
    arity: int | tuple[int, int | None] = 1  # exact count, or (min, max or None)
    varargs: Arg | None = None  # positional arguments collected as one tuple (add(a, b, c))
    kind: str = "op"  # op | combinator
    expand: Callable[..., Any] | None = None  # combinators: the elaboration rule
    aliases: tuple[str, ...] = ()
    category: str = ""
    doc: str = ""
    internal: bool = False  # produced by elaboration only, not callable from a spec
    # Takes integer tensors too (layout and merges: any dtype; embeddings: token ids);
    # every other op needs floating-point inputs.
    int_inputs: bool = False
    # The identity in an inference graph (dropout): no node at all in the ONNX model.
    inference_identity: bool = False
    # Parameters that must be positive (variances, scales): tests that perturb weights
    # keep them so.
    positive_params: tuple[str, ...] = ()
    # The parts of the op's final state, which `node.h` names (recurrent nets: h, and c for
    # an lstm) and an `initial=node` of another such op reads.
    state: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()  # test cases, read by the table-driven tests
    errors: tuple[Failure, ...] = ()  # error cases, message and place

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def accepts_arity(self, n: int) -> bool:
        if isinstance(self.arity, int):
            return n == self.arity
        lo, hi = self.arity
        return n >= lo and (hi is None or n <= hi)

    def signature(self) -> str:
        parts = [
            a.name if a.required else f"{a.name}={_default_text(a.default)}" for a in self.args
        ]
        return f"{self.name}({', '.join(parts)})" if parts else self.name


def _default_text(v: Any) -> str:
    from ..ir import format_value

    return format_value(v)


REGISTRY: dict[str, OpDef] = {}
ALIASES: dict[str, str] = {}


def register(opdef: OpDef) -> OpDef:
    assert opdef.name not in REGISTRY and opdef.name not in ALIASES, opdef.name
    assert opdef.kind == "combinator" or opdef.shape is not None, f"{opdef.name}: no shape rule"
    REGISTRY[opdef.name] = opdef
    for alias in opdef.aliases:
        assert alias not in REGISTRY and alias not in ALIASES, alias
        ALIASES[alias] = opdef.name
    return opdef


def lookup(name: str) -> OpDef | None:
    """The op a spec calls `name` (aliases resolved); internal ops are not callable."""
    opdef = REGISTRY.get(ALIASES.get(name, name))
    return None if opdef is None or opdef.internal else opdef


def public_names() -> list[str]:
    return sorted([n for n, d in REGISTRY.items() if not d.internal] + list(ALIASES))
