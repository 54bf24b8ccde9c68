"""The `search:` section: a space of hyperparameters named by dotted paths into the spec.

    search:
      space:
        params.hidden: int(32, 512, log=true)
        training.optimizer.lr: float(1e-4, 1e-1, log=true)
        params.act: choice(relu, gelu, tanh)
      metric: val_accuracy

`read_search` types the section: each range is parsed by the expression grammar (so a bad
one is located at its line and column) and each path is checked against the spec (an
unknown one is a located error with "did you mean"). A point of the space becomes a plain
spec through `point_overrides`: the `--set` overrides that `dlc train --set` takes, so a
trial is exactly the spec with those overrides. No torch, no Optuna here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..schema import load_schema
from .errors import Collector, DlcError, Loc, UsageError, did_you_mean
from .overrides import _NOT_SETTABLE, _TRAINING_TEXTS
from .spec import Spec, Text
from .syntax import Call, Expr, Name, Neg, Num, Str, parse_expr
from .training import OPTIMIZERS

Value = int | float | str | bool
GRID_POINTS = 5  # an int or float range's points under the grid sampler


@dataclass(frozen=True)
class Dimension:
    """One path of the space and its range."""

    path: str  # params.hidden, training.weight_decay, training.optimizer.lr
    kind: str  # int | float | choice
    loc: Loc  # the path's key in the spec
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Value, ...] = ()

    def corners(self) -> tuple[Value, ...]:
        """The values a pre-check must try: both ends of a range, or every choice."""
        if self.kind == "choice":
            return self.choices
        ends = (self.low, self.high)
        return tuple(int(v) for v in ends) if self.kind == "int" else ends

    def grid(self) -> list[Value]:
        """The grid sampler's values: every choice, or GRID_POINTS spread over the range."""
        if self.kind == "choice":
            return list(self.choices)
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        raw = [lo + (hi - lo) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
        values = [math.exp(v) for v in raw] if self.log else raw
        if self.kind == "int":
            return sorted({round(v) for v in values})
        return [float(f"{v:.6g}") for v in values]


@dataclass(frozen=True)
class SearchSpec:
    dims: tuple[Dimension, ...]
    metric: str = "val_loss"
    direction: str = "minimize"
    trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    metric_loc: Loc | None = None


def direction_of(metric: str) -> str:
    """maximize for an accuracy or r2, else minimize (losses, errors)."""
    return "maximize" if any(k in metric for k in ("accuracy", "r2")) else "minimize"


def read_search(spec: Spec) -> SearchSpec:
    """The spec's `search:` section, typed and checked against the spec; a UsageError
    carrying every mistake, each located."""
    doc = spec.document
    section = doc.data.get("search")
    if section is None:
        raise UsageError(
            f"{doc.source.name} has no search section",
            hint="add one: search: {space: {params.hidden: 'int(32, 512)'}, metric: val_loss}",
        )
    errors = Collector(UsageError)
    pool = _paths(spec)
    dims = []
    for key, value in section["space"].items():
        path = ("search", "space", key)
        try:
            dim = _dimension(key, Text(value, path, doc), doc.key_loc(path))
            _check_path(spec, dim, pool)
            dims.append(dim)
        except DlcError as e:
            errors.extend(e)
    errors.raise_if_any()
    metric = section.get("metric", "val_loss")
    return SearchSpec(
        dims=tuple(dims),
        metric=metric,
        direction=section.get("direction") or direction_of(metric),
        trials=section.get("trials", 20),
        timeout=section.get("timeout"),
        sampler=section.get("sampler", "tpe"),
        pruner=section.get("pruner", "median"),
        seed=section.get("seed", 0),
        metric_loc=doc.loc(("search", "metric")) if "metric" in section else doc.loc(("search",)),
    )


def _dimension(key: str, text: Text, key_loc: Loc) -> Dimension:
    e = text.parse()
    kinds = ("int", "float", "choice")
    if not isinstance(e, Call) or e.name not in kinds:
        name = e.name if isinstance(e, Call) else e.id if isinstance(e, Name) else ""
        raise UsageError(
            f"a search range is int(LOW, HIGH), float(LOW, HIGH) or choice(A, B, ...), "
            f"got '{text.value}'{did_you_mean(name, kinds) if name else ''}",
            e.name_loc if isinstance(e, Call) else e.loc,
            "e.g. int(32, 512, log=true), float(1e-4, 1e-1, log=true), choice(relu, gelu)",
        )
    if e.name == "choice":
        if e.kwargs:
            raise UsageError("choice(...) takes no keyword arguments", e.kwargs[0].loc)
        if not e.args:
            raise UsageError("choice(...) needs at least one value", e.loc)
        return Dimension(key, "choice", key_loc, choices=tuple(_literal(a) for a in e.args))
    if len(e.args) != 2:
        raise UsageError(f"{e.name}(LOW, HIGH) takes two bounds, got {len(e.args)}", e.loc)
    log = False
    for kw in e.kwargs:
        if kw.name != "log":
            raise UsageError(
                f"{e.name}(...) has no argument '{kw.name}'{did_you_mean(kw.name, ['log'])}",
                kw.loc,
            )
        v = _literal(kw.value)
        if not isinstance(v, bool):
            raise UsageError(f"log= takes true or false, got {v!r}", kw.value.loc)
        log = v
    low, high = (_number(a) for a in e.args)
    if e.name == "int" and not all(isinstance(v, int) for v in (low, high)):
        raise UsageError("int(LOW, HIGH) takes whole numbers; use float(...)", e.loc)
    if not low < high:
        raise UsageError(f"a range needs LOW < HIGH, got {low} and {high}", e.loc)
    if log and low <= 0:
        raise UsageError(f"a log=true range needs LOW > 0, got {low}", e.args[0].loc)
    return Dimension(key, e.name, key_loc, float(low), float(high), log)


def _literal(e: Expr) -> Value:
    if isinstance(e, Name) and e.id in ("true", "false"):
        return e.id == "true"
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Str):
        return e.value
    return _number(e)


def _number(e: Expr) -> int | float:
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Neg) and isinstance(e.operand, Num):
        return -e.operand.value
    raise UsageError("expected a number here", e.loc)


def _optimizer(spec: Spec) -> tuple[str, tuple[str, ...]] | None:
    """The spec's optimizer name and its argument names (None without one)."""
    t = spec.training
    if t is None or t.optimizer is None:
        return None
    e = t.optimizer.parse()
    name = e.name if isinstance(e, Call) else e.id if isinstance(e, Name) else ""
    return name, tuple(a.name for a in OPTIMIZERS.get(name, ()))


def _settable_training() -> list[str]:
    props = load_schema()["$defs"]["training"]["properties"]
    return [k for k in props if k not in _NOT_SETTABLE]


def _paths(spec: Spec) -> list[str]:
    """Every path a space may name in this spec (for "did you mean")."""
    out = [f"params.{p.name}" for p in spec.params]
    if spec.training is not None:
        out += [f"training.{k}" for k in _settable_training()]
    opt = _optimizer(spec)
    if opt is not None:
        out += [f"training.optimizer.{a}" for a in opt[1]]
    return out


def _check_path(spec: Spec, dim: Dimension, pool: list[str]) -> None:
    head, _, rest = dim.path.partition(".")
    params = {p.name: p.value for p in spec.params}
    if head == "params" and rest in params:
        old = params[rest]
        numeric = isinstance(old, int | float) and not isinstance(old, bool)
        if dim.kind != "choice" and not numeric:
            raise UsageError(f"{dim.path} is a {type(old).__name__} param ({old!r}): "
                             "give it a choice(...)", dim.loc)  # fmt: skip
        if dim.kind == "choice" and any(_kind(c) != _kind(old) for c in dim.choices):
            bad = next(c for c in dim.choices if _kind(c) != _kind(old))
            raise UsageError(f"{dim.path} is a {_kind(old)} param ({old!r}), "
                             f"but the choice {bad!r} is not", dim.loc)  # fmt: skip
        return
    if head == "training" and spec.training is not None:
        key, _, arg = rest.partition(".")
        opt = _optimizer(spec)
        if arg and key == "optimizer" and opt is not None and arg in opt[1]:
            if dim.kind == "choice" and not all(_kind(c) == "number" for c in dim.choices):
                raise UsageError(f"{dim.path} takes numbers", dim.loc)
            return
        if not arg and key in _settable_training():
            if key in _TRAINING_TEXTS and dim.kind != "choice":
                raise UsageError(f"{dim.path} is an expression: give it a choice(...)", dim.loc)
            return
    raise UsageError(
        f"the search space names unknown path '{dim.path}'{did_you_mean(dim.path, pool)}",
        dim.loc,
        f"paths of this spec: {', '.join(pool[:12])}{', ...' if len(pool) > 12 else ''}",
    )


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    return "number" if isinstance(v, int | float) else "string"


def point_overrides(spec: Spec, point: dict[str, Value]) -> list[str]:
    """The `--set` overrides that make `point` (path -> value) a plain spec."""
    out: list[str] = []
    opt_args: dict[str, Value] = {}
    optimizer = spec.training.optimizer.value if spec.training and spec.training.optimizer else ""
    for path, value in point.items():
        if path.startswith("training.optimizer."):
            opt_args[path.removeprefix("training.optimizer.")] = value
        elif path == "training.optimizer":
            optimizer = str(value)
        elif path.startswith("params."):
            out.append(f"{path.removeprefix('params.')}={show(value)}")
        else:
            out.append(f"{path}={show(value)}")
    if opt_args or "training.optimizer" in point:
        out.append(f"training.optimizer={with_args(optimizer, opt_args)}")
    return out


def show(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def describe(point: dict[str, Value]) -> str:
    """`params.hidden=33, params.heads=4`: a point as the messages show it."""
    return ", ".join(f"{k}={show(v)}" for k, v in point.items())


def with_args(text: str, args: dict[str, Value]) -> str:
    """An optimizer call with `args` set: `adam(lr=1e-3)` + {lr: 0.01} -> `adam(lr=0.01)`;
    a positional argument is replaced where it stands, a missing one is appended."""
    if not args:
        return text
    e = parse_expr(text, lambda offset, length: Loc(None, 1, offset + 1, offset + 1 + length))
    if isinstance(e, Name):
        return f"{e.id}({', '.join(f'{k}={show(v)}' for k, v in args.items())})"
    assert isinstance(e, Call), text  # read_search checked the spec's optimizer is a call
    names = [a.name for a in OPTIMIZERS.get(e.name, ())]
    edits: list[tuple[int, int, str]] = []
    left = dict(args)
    for i, a in enumerate(e.args):
        if i < len(names) and names[i] in left:
            edits.append((a.span[0], a.span[1], show(left.pop(names[i]))))
    for kw in e.kwargs:
        if kw.name in left:
            edits.append((kw.value.span[0], kw.value.span[1], show(left.pop(kw.name))))
    end = e.span[1] - 1  # the closing parenthesis
    if left:
        sep = ", " if (e.args or e.kwargs) else ""
        edits.append((end, end, sep + ", ".join(f"{k}={show(v)}" for k, v in left.items())))
    for start, stop, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[stop:]
    return text
