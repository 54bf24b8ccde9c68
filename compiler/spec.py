"""The validated document as typed objects: where raw YAML values stop.

`read_spec` runs after JSON Schema validation, so the structure is known to be right;
it turns the document into frozen dataclasses whose expression strings are `Text`s
that remember their place in the file (and parse to located ASTs). Nothing after this
module indexes the YAML dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ExprSyntaxError, Loc
from .loader import Document, Path
from .syntax import Expr, Signature, parse_expr, parse_signature

FLOW_LIST_HINT = (
    "a comma inside [...] separates YAML list items, also inside a call: put each layer "
    "on its own line (- conv2d(c, 3)) or quote it"
)


@dataclass(frozen=True, slots=True)
class Text:
    """A string from the spec (usually an expression) and where it stands."""

    value: str
    path: Path
    doc: Document = field(repr=False, compare=False)

    @property
    def loc(self) -> Loc:
        return self.doc.loc(self.path)

    def locate(self, offset: int, length: int) -> Loc:
        return self.doc.text_loc(self.path, offset, length)

    def parse(self) -> Expr:
        try:
            return parse_expr(self.value, self.doc.text_locator(self.path))
        except ExprSyntaxError as e:
            if self._split_by_flow_list():
                raise ExprSyntaxError(e.message, e.loc, FLOW_LIST_HINT) from None
            raise

    def _split_by_flow_list(self) -> bool:
        """Was this item cut out of `[conv2d(c, 3), relu]` at a call's comma?"""
        if not self.path or not isinstance(self.path[-1], int):
            return False
        if self.value.count("(") == self.value.count(")"):
            return False
        loc = self.loc
        before = loc.source.line(loc.line)[: loc.col - 1].rstrip() if loc.source else ""
        return before.endswith(("[", ","))

    def parse_signature(self) -> Signature:
        return parse_signature(self.value, self.doc.text_locator(self.path))


@dataclass(frozen=True, slots=True)
class ParamDef:
    name: str
    value: int | float | str | bool
    loc: Loc
    text: Text | None = None  # for string values: parsed as an expression where used


@dataclass(frozen=True, slots=True)
class InputDef:
    name: str
    dims: tuple[int | Text, ...]
    dtype: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class SeqBody:
    """A sequential stack: each item a pipeline applied to the previous result."""

    items: tuple[Text, ...]
    loc: Loc


@dataclass(frozen=True, slots=True)
class GraphBody:
    """Named nodes: (name, the name's location, the node's pipeline)."""

    nodes: tuple[tuple[str, Loc, Text], ...]
    loc: Loc


Body = SeqBody | GraphBody


@dataclass(frozen=True, slots=True)
class BlockDef:
    signature: Text
    body: Body
    loc: Loc


@dataclass(frozen=True, slots=True)
class LossTerm:
    loss: Text
    output: str | None = None
    target: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    """The `training:` section. Expression-valued entries are `Text`s."""

    loss: tuple[LossTerm, ...] = ()
    optimizer: Text | None = None
    schedule: Text | None = None
    init: Text | None = None
    options: tuple[tuple[str, Any], ...] = ()  # the plain-valued keys (epochs, seed, data, ...)
    loc: Loc | None = None
    data_locs: tuple[tuple[str, Loc], ...] = ()  # where data.train, .val and .test stand


@dataclass(frozen=True, slots=True)
class ExportSpec:
    opset: int | None = None
    outputs: tuple[tuple[str, Text], ...] = ()
    ir_version: int | None = None
    dynamic_batch: bool = True


@dataclass(frozen=True, slots=True)
class LintSpec:
    """The `lint:` section: the rule ids the spec silences, each with where it stands
    (`dlc lint` checks them against its registry)."""

    ignore: tuple[tuple[str, Loc], ...] = ()


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    doc: str
    params: tuple[ParamDef, ...]
    inputs: tuple[InputDef, ...]
    blocks: tuple[BlockDef, ...]
    model: Body
    outputs: tuple[tuple[str, Text], ...]
    training: TrainingSpec | None
    export: ExportSpec | None
    document: Document = field(repr=False, compare=False)
    lint: LintSpec = LintSpec()


def read_spec(doc: Document, network: str | None = None) -> Spec:
    """The spec; with `network`, the spec of that entry of `networks:` (its inputs, model
    and outputs; the spec's params, blocks, training and export), named NAME_NETWORK."""
    data = doc.data
    base: Path = ("networks", network) if network else ()
    net = data["networks"][network] if network else data
    return Spec(
        name=f"{data['name']}_{network}" if network else data["name"],
        doc=data.get("doc", ""),
        params=tuple(_param(doc, k, v) for k, v in data.get("params", {}).items()),
        inputs=tuple(_input(doc, k, v, base) for k, v in net.get("inputs", {}).items()),
        blocks=tuple(
            BlockDef(
                Text(k, ("blocks", k), doc),
                _body(doc, ("blocks", k), v),
                doc.key_loc(("blocks", k)),
            )
            for k, v in data.get("blocks", {}).items()
        ),
        model=_body(doc, base + ("model",), net["model"]),
        outputs=tuple(
            (k, Text(v, base + ("outputs", k), doc)) for k, v in net.get("outputs", {}).items()
        ),
        training=_training(doc, data["training"], network) if "training" in data else None,
        export=_export(doc, data["export"]) if "export" in data else None,
        document=doc,
        lint=_lint(doc, data.get("lint") or {}),
    )


def _lint(doc: Document, section: dict[str, Any]) -> LintSpec:
    rules = section.get("ignore") or []
    return LintSpec(tuple((r, doc.loc(("lint", "ignore", i))) for i, r in enumerate(rules)))


def _param(doc: Document, name: str, value: Any) -> ParamDef:
    path = ("params", name)
    text = Text(value, path, doc) if isinstance(value, str) else None
    return ParamDef(name, value, doc.key_loc(path), text)


def _input(doc: Document, name: str, value: Any, base: Path = ()) -> InputDef:
    path: Path = base + ("inputs", name)
    dtype = "float32"
    if isinstance(value, dict):
        dtype = value.get("dtype", dtype)
        value, path = value["shape"], path + ("shape",)
    dims = tuple(
        d if isinstance(d, int) else Text(str(d), path + (i,), doc) for i, d in enumerate(value)
    )
    return InputDef(name, dims, dtype, doc.key_loc(base + ("inputs", name)))


def _body(doc: Document, path: Path, value: Any) -> Body:
    if isinstance(value, str):
        return SeqBody((Text(value, path, doc),), doc.loc(path))
    if isinstance(value, list):
        return SeqBody(tuple(Text(v, path + (i,), doc) for i, v in enumerate(value)), doc.loc(path))
    nodes = tuple(
        (k, doc.key_loc(path + (k,)), Text(v, path + (k,), doc)) for k, v in value.items()
    )
    return GraphBody(nodes, doc.loc(path))


_TRAINING_EXPRS = ("loss", "optimizer", "schedule", "init")


def _training(doc: Document, t: dict[str, Any], network: str | None = None) -> TrainingSpec:
    p: Path = ("training",)
    loss: tuple[LossTerm, ...] = ()
    if isinstance(t.get("loss"), str):
        loss = (LossTerm(Text(t["loss"], p + ("loss",), doc)),)
    elif isinstance(t.get("loss"), list):
        loss = tuple(
            LossTerm(
                Text(term["loss"], p + ("loss", i, "loss"), doc),
                term.get("output"),
                term.get("target"),
                float(term.get("weight", 1.0)),
            )
            for i, term in enumerate(t["loss"])
        )

    def text(key: str) -> Text | None:
        if isinstance(t.get(key), dict):  # one per network (compiler/networks.py checks)
            given = t[key].get(network or "")
            return Text(given, p + (key, network or ""), doc) if given is not None else None
        return Text(t[key], p + (key,), doc) if key in t else None

    options = tuple((k, v) for k, v in t.items() if k not in _TRAINING_EXPRS)
    data = t.get("data") or {}
    data_locs = tuple((k, doc.loc(p + ("data", k))) for k in ("train", "val", "test") if k in data)
    return TrainingSpec(
        loss, text("optimizer"), text("schedule"), text("init"), options, doc.loc(p), data_locs
    )


def _export(doc: Document, e: dict[str, Any]) -> ExportSpec:
    outputs = tuple(
        (k, Text(v, ("export", "outputs", k), doc)) for k, v in e.get("outputs", {}).items()
    )
    return ExportSpec(e.get("opset"), outputs, e.get("ir_version"), e.get("dynamic_batch", True))
