"""Load a spec: safe YAML in, plain Python values out, with a location for every node.

Design
------
PyYAML is used only as a *parser*: it turns the text into a stream of events (libyaml's
C parser when PyYAML was built with it, the pure-Python parser otherwise). PyYAML's
composer and constructors are never run; `_Builder` consumes the events itself, with
an explicit stack instead of recursion, and builds two parallel trees at once:

* the data: dicts (str keys, insertion order), lists, str, int, float, bool, None;
* a tree of `YamlNode`s holding the parser's start/end marks of every value and key.

Building from events lets every rule be checked at the event that breaks it, before
the rest of the input is looked at: tags (only the standard `!!str !!int !!float !!bool
!!null !!map !!seq`; never a Python tag), merge keys, non-scalar and duplicate keys,
nesting depth, undefined and recursive aliases, and the node budget. An alias expands
into a fresh copy of its anchor's data, but the subtree's size and height are known
from when the anchor was built, so a 'billion laughs' document is refused at the first
alias that would cross `MAX_NODES`, before anything is copied. Plain scalars are
resolved by dlc's own YAML-1.2-core-like rules (scalars.py: `yes` stays a string,
`3e-4` is a float); quoted and block scalars are always strings.

Locations are computed lazily, only when a later phase asks for one (`Document.loc`,
`key_loc`, `text_loc`), from the marks and the source text (locations.py).

Every problem a user's text can cause is a `LoadError` with a `Loc` (lines and columns
count from 1); nothing else escapes `load_text`.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import yaml  # type: ignore[import-untyped]

from .errors import LoadError, Loc, Source
from .locations import (
    Entries,
    Fragment,
    YamlNode,
    fragment_loc,
    line_col,
    mark_loc,
    node_loc,
    place_fragments,
    tag_loc,
)
from .scalars import (
    MAP,
    SCALAR_TAGS,
    SEQ,
    STR,
    resolve_plain,
    resolve_tagged,
    short_tag,
)

MAX_BYTES = 4 * 1024 * 1024  # file size limit
MAX_DEPTH = 64  # nesting limit
MAX_NODES = 1_000_000  # total nodes after alias expansion (YAML bombs)

Path = tuple[str | int, ...]  # JSON-pointer-like path: ("model", 0)

# `hasattr(yaml, "CParser")` is always False: PyYAML exports the C classes only through
# its loaders, so `__with_libyaml__` is the way to know whether libyaml is there.
_PARSER: type = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

_PLAIN = (None, "")  # the style of a plain scalar (None from PyYAML, "" from libyaml)
_CONTAINERS = (dict, list)


# --------------------------------------------------------------------------- document


@dataclass(frozen=True)
class Document:
    """A loaded spec: its source, its plain data, and where each value came from."""

    source: Source
    data: Any
    _tree: YamlNode | None = field(default=None, repr=False, compare=False)

    def loc(self, path: Path) -> Loc:
        """Where the value at `path` is (or its nearest existing ancestor)."""
        node, _key, _found = self._walk(path)
        return node_loc(self.source, node) if node else Loc(self.source, 1, 1)

    def key_loc(self, path: Path) -> Loc:
        """Where the key of the mapping entry at `path` is; else `loc(path)`."""
        _node, key, found = self._walk(path)
        return node_loc(self.source, key) if found and key else self.loc(path)

    def text_loc(self, path: Path, offset: int, length: int = 1) -> Loc:
        """Where character `offset` of the string scalar at `path` is, `length` wide."""
        return self.text_locator(path)(offset, length)

    def text_locator(self, path: Path) -> Callable[[int, int], Loc]:
        """`text_loc` for one scalar, with the scalar's layout worked out once, on the
        first call (the parser hands a locator to every string; few are ever asked)."""
        layout: list[tuple[Loc, str, list[tuple[int, Fragment]]]] = []

        def locate(offset: int, length: int = 1) -> Loc:
            if not layout:
                layout.append(self._layout(path))
            whole, value, placed = layout[0]
            if placed and 0 <= offset <= len(value) and length >= 0:
                for start, frag in reversed(placed):
                    if start <= offset:
                        return fragment_loc(self.source, frag, offset - start, length)
            return whole

        return locate

    def _layout(self, path: Path) -> tuple[Loc, str, list[tuple[int, Fragment]]]:
        """The scalar's location, its value, and its source lines placed in the value."""
        node, _key, found = self._walk(path)
        target = node.target or node if found and node and node.text is not None else None
        value = target.text or "" if target else ""
        placed = place_fragments(self.source, target, value) if target else []
        return self.loc(path), value, placed

    def _walk(self, path: Path) -> tuple[YamlNode | None, YamlNode | None, bool]:
        """The deepest node on `path`, the key node of its entry, and whether all of
        `path` exists."""
        node, key = self._tree, None
        for step in path:
            entry = _child(node, step) if node else None
            if entry is None:
                return node, key, False
            key, node = entry
        return node, key, True


def _child(node: YamlNode, step: str | int) -> tuple[YamlNode | None, YamlNode] | None:
    items = node.items
    if isinstance(items, dict) and isinstance(step, str):
        return items.get(step)
    if isinstance(items, list) and type(step) is int and 0 <= step < len(items):
        return None, items[step]
    return None


# ------------------------------------------------------------------------------- load


def load_file(path: str | os.PathLike[str], *, name: str | None = None) -> Document:
    """Read and load a spec file; its size is checked before it is read."""
    name = os.fspath(path) if name is None else name
    data = _read_bytes(path, name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _not_utf8(name, data, err) from None
    return load_text(text, name)


def load_text(text: str, name: str = "<string>") -> Document:
    """Load a spec from a string (a leading byte-order mark is dropped)."""
    text = text.removeprefix("\ufeff")
    source = Source(name, text)
    _check_encodable(source)
    data, tree = _parse(source)
    if tree is None or _is_empty(tree, data):
        raise LoadError(
            "empty spec",
            Loc(source, 1, 1),
            hint="a spec is a YAML mapping (dlc: 1, name: ..., model: ...)",
        )
    if not isinstance(data, dict):
        raise LoadError(
            f"a spec is a YAML mapping (dlc: 1, name: ..., model: ...), not {_kind(data)}",
            node_loc(source, tree),
        )
    return Document(source, data, tree)


def _read_bytes(path: str | os.PathLike[str], name: str) -> bytes:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise LoadError(f"cannot read '{name}': it is a directory")
        _check_size(name, info.st_size)
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)  # the file may have grown since stat
    except FileNotFoundError:
        raise LoadError(f"cannot read '{name}': no such file") from None
    except OSError as err:
        raise LoadError(f"cannot read '{name}': {err.strerror or err}") from None
    _check_size(name, len(data))
    return data


def _check_size(name: str, size: int) -> None:
    if size > MAX_BYTES:
        raise LoadError(
            f"'{name}' is too large: {size} bytes (the limit is {MAX_BYTES} bytes)",
            hint="a spec this large is likely not a spec; check the file",
        )


def _not_utf8(name: str, data: bytes, err: UnicodeDecodeError) -> LoadError:
    text = data.decode("utf-8", errors="replace")
    line, col = line_col(data[: err.start].decode("utf-8", errors="replace"))
    return LoadError(
        f"'{name}' is not UTF-8 text (invalid byte 0x{data[err.start]:02x})",
        Loc(Source(name, text), line, col),
        hint="save the spec as UTF-8",
    )


def _check_encodable(source: Source) -> None:
    """Refuse text over MAX_BYTES (in UTF-8) or with a lone surrogate (a str can hold
    one; a file decoded as UTF-8 cannot)."""
    try:
        size = len(source.text.encode("utf-8"))
    except UnicodeEncodeError as err:
        line, col = line_col(source.text[: err.start])
        raise LoadError(
            "the text contains a lone surrogate (it is not valid Unicode)", Loc(source, line, col)
        ) from None
    _check_size(source.name, size)


def _is_empty(tree: YamlNode, data: Any) -> bool:
    """No document, or one whose root is an empty plain scalar (`---` alone)."""
    return data is None and tree.style in _PLAIN and tree.text == ""


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a sequence"
    return "null" if value is None else f"a scalar ({type(value).__name__})"


# ------------------------------------------------------------------------------ parse


def _parse(source: Source) -> tuple[Any, YamlNode | None]:
    """The data and node trees of the text's only document (None, None if it has none)."""
    try:
        parser = _PARSER(source.text)  # the pure-Python reader checks characters here
        return _build(source, parser)
    except yaml.YAMLError as err:
        raise _yaml_error(source, err) from None


def _build(source: Source, parser: Any) -> tuple[Any, YamlNode | None]:
    """Feed the parser's events to a `_Builder`."""
    builder = _Builder(source)
    try:
        with gc_paused():
            builder.run(parser)
    except (ValueError, OverflowError):  # the pure-Python scanner's chr() of a bad \U escape
        raise LoadError(
            "invalid escape in a double-quoted string (past U+10FFFF)",
            mark_loc(source, parser.get_mark()),
        ) from None
    finally:
        parser.dispose()
    return builder.root or (None, None)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building allocates several objects per node
    and frees no cycles, so collections during a build only rescan the growing trees
    (they would take over half of the load time of a large spec)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(slots=True)
class _Frame:
    """An open mapping or sequence while its events are being read."""

    node: YamlNode
    data: dict[str, Any] | list[Any]
    anchor: str | None
    first: int  # the node count before this collection
    height: int = 0  # the tallest child so far
    key: YamlNode | None = None  # a mapping's key waiting for its value


class _Builder:
    """Builds plain data and `YamlNode`s from parser events, enforcing the loader's rules."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[YamlNode, Any] | None] = {}  # None: still open
        self.count = 0
        self.root: tuple[Any, YamlNode] | None = None
        self.handlers = {
            yaml.DocumentStartEvent: self._document,
            yaml.ScalarEvent: self._scalar,
            yaml.AliasEvent: self._alias,
            yaml.MappingStartEvent: self._start_mapping,
            yaml.SequenceStartEvent: self._start_sequence,
            yaml.MappingEndEvent: self._end,
            yaml.SequenceEndEvent: self._end,
        }

    def run(self, parser: Any) -> None:
        """Consume all of the parser's events (get_event() is None after the last)."""
        handlers = self.handlers
        while (event := parser.get_event()) is not None:
            handler = handlers.get(type(event))
            if handler:
                handler(event)

    def _document(self, event: yaml.DocumentStartEvent) -> None:
        if self.root:
            raise LoadError(
                "a spec is a single YAML document; found a second one",
                mark_loc(self.source, event.start_mark),
                hint="remove the '---' line and what follows, or merge them",
            )

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        node = YamlNode(event.start_mark, event.end_mark, event.style, event.value, None)
        self._count(1, node)
        try:
            if event.tag is None and event.style in _PLAIN:  # the common case, kept quick
                value = resolve_plain(event.value)
            else:
                value = self._explicit_value(event, node)
        except ValueError as err:
            self._fail(str(err), node)
        if event.anchor:
            self.anchors[event.anchor] = (node, value)
        self._add(node, value)

    def _alias(self, event: yaml.AliasEvent) -> None:
        node = YamlNode(event.start_mark, event.end_mark, "*", None, None)
        if event.anchor not in self.anchors:
            self._fail(
                f"undefined alias '*{event.anchor}'",
                node,
                f"define it first with '&{event.anchor}' on an earlier value",
            )
        entry = self.anchors[event.anchor]
        if entry is None:
            self._fail(f"recursive alias '*{event.anchor}' (it is inside the node it names)", node)
        target, value = entry
        if len(self.stack) + target.height > MAX_DEPTH:
            self._fail(f"nesting is deeper than {MAX_DEPTH} levels once aliases expand", node)
        self._count(target.size, node)
        node.text, node.items, node.target = target.text, target.items, target
        node.size, node.height = target.size, target.height
        self._add(node, _clone(value))

    def _start_mapping(self, event: yaml.MappingStartEvent) -> None:
        self._start(event, YamlNode(event.start_mark, event.end_mark, None, None, {}), {}, MAP)

    def _start_sequence(self, event: yaml.SequenceStartEvent) -> None:
        self._start(event, YamlNode(event.start_mark, event.end_mark, None, None, []), [], SEQ)

    def _start(
        self, event: yaml.CollectionStartEvent, node: YamlNode, data: Any, kind: str
    ) -> None:
        self._count(1, node)
        if len(self.stack) >= MAX_DEPTH:
            self._fail(f"nesting is deeper than {MAX_DEPTH} levels", node)
        if event.tag is not None:
            self._check_collection_tag(event.tag, kind, node)
        if event.anchor:
            self.anchors[event.anchor] = None
        self.stack.append(_Frame(node, data, event.anchor, self.count - 1))

    def _end(self, event: yaml.CollectionEndEvent) -> None:
        frame = self.stack.pop()
        node = frame.node
        node.size, node.height = self.count - frame.first, frame.height + 1
        if frame.anchor:
            self.anchors[frame.anchor] = (node, frame.data)
        self._add(node, frame.data)

    def _add(self, node: YamlNode, value: Any) -> None:
        """Put a finished value into the open collection (or make it the root)."""
        if not self.stack:
            self.root = (value, node)
            return
        frame = self.stack[-1]
        if node.height > frame.height:
            frame.height = node.height
        if isinstance(frame.data, list):
            frame.data.append(value)
            cast(list[YamlNode], frame.node.items).append(node)
        elif frame.key is None:
            self._check_key(frame, node)
            frame.key = node
        else:
            key = frame.key.text
            assert key is not None  # _check_key refused a collection as a key
            frame.data[key] = value
            cast(Entries, frame.node.items)[key] = (frame.key, node)
            frame.key = None

    def _check_key(self, frame: _Frame, key: YamlNode) -> None:
        if key.text is None:
            self._fail(
                "a mapping key must be a scalar, not a mapping or sequence",
                key,
                "write the key as a plain string",
            )
        if key.text == "<<" and key.style in _PLAIN:
            self._fail(
                "YAML merge keys are not supported",
                key,
                "write the keys out in this mapping instead of merging them",
            )
        if key.text in frame.data:
            first = node_loc(self.source, cast(Entries, frame.node.items)[key.text][0])
            self._fail(f"duplicate key '{key.text}' (first defined at line {first.line})", key)

    def _count(self, nodes: int, node: YamlNode) -> None:
        self.count += nodes
        if self.count > MAX_NODES:
            self._too_many(node)

    def _too_many(self, node: YamlNode) -> NoReturn:
        if node.style == "*":
            self._fail(
                f"YAML alias expansion exceeds {MAX_NODES} nodes (a 'billion laughs' bomb?)", node
            )
        self._fail(f"the spec has more than {MAX_NODES} YAML nodes", node)

    def _explicit_value(self, event: yaml.ScalarEvent, node: YamlNode) -> Any:
        """The value of a quoted, block or tagged scalar."""
        tag, text = event.tag, event.value
        if tag is None or tag in ("!", STR):
            return text
        if tag in SCALAR_TAGS:
            return resolve_tagged(tag, text)
        self._fail_tag(tag, node)

    def _check_collection_tag(self, tag: str, kind: str, node: YamlNode) -> None:
        if tag in ("!", kind):
            return
        if tag in SCALAR_TAGS or tag in (MAP, SEQ):
            what = "mapping" if kind == MAP else "sequence"
            self._fail(f"the tag '{short_tag(tag)}' cannot be used on a {what}", node, tag=True)
        self._fail_tag(tag, node)

    def _fail_tag(self, tag: str, node: YamlNode) -> NoReturn:
        if "python/" in tag:
            self._fail(
                f"Python tags are not allowed ('{short_tag(tag)}'): "
                "dlc never runs code from a spec",
                node,
                tag=True,
            )
        self._fail(
            f"unsupported YAML tag '{short_tag(tag)}'",
            node,
            "dlc specs hold plain YAML values; remove the tag",
            tag=True,
        )

    def _fail(
        self, message: str, node: YamlNode, hint: str | None = None, *, tag: bool = False
    ) -> NoReturn:
        loc = tag_loc(self.source, node) if tag else node_loc(self.source, node)
        raise LoadError(message, loc, hint)


def _clone(value: Any) -> Any:
    """A fresh copy of an anchored value, so that every alias expands to its own data
    (scalars are immutable and shared)."""
    if isinstance(value, dict):
        return {
            key: _clone(item) if type(item) in _CONTAINERS else item for key, item in value.items()
        }
    if isinstance(value, list):
        return [_clone(item) if type(item) in _CONTAINERS else item for item in value]
    return value


# ------------------------------------------------------------------------------ errors


def _yaml_error(source: Source, err: yaml.YAMLError) -> LoadError:
    """A parser error, located at its problem mark (1-based)."""
    if isinstance(err, yaml.reader.ReaderError):
        return _reader_error(source, err)
    if not isinstance(err, yaml.MarkedYAMLError):
        return LoadError(f"invalid YAML: {err}", Loc(source, 1, 1))
    mark = err.problem_mark or err.context_mark
    loc = mark_loc(source, mark) if mark else Loc(source, 1, 1)
    message = err.problem or err.context or "invalid YAML"
    if err.problem and err.context:
        message += f" ({err.context}{_where(err.context_mark, mark)})"
    tab = mark is not None and source.text[mark.index : mark.index + 1] == "\t"
    return LoadError(message, loc, "indent YAML with spaces, not tabs" if tab else None)


def _where(context: Any, problem: Any) -> str:
    if context is None or (context.line, context.column) == (problem.line, problem.column):
        return ""
    return f" at line {context.line + 1}, column {context.column + 1}"


def _reader_error(source: Source, err: yaml.reader.ReaderError) -> LoadError:
    """A character YAML does not allow; libyaml reports a byte offset, so find the
    character itself (the first occurrence is the one the reader stopped at)."""
    index = source.text.find(chr(err.character)) if isinstance(err.character, int) else -1
    line, col = line_col(source.text[:index]) if index >= 0 else (1, 1)
    return LoadError(
        f"character U+{err.character:04X} is not allowed in YAML", Loc(source, line, col)
    )
