"""Where a loaded YAML value stands in its source: lines, columns and spans.

The loader keeps, for every value and key, a `YamlNode` with the parser's start and end
marks; this module turns marks into `Loc`s, and only when a later phase asks for one.
A collection is located at its start, an alias at its token, a scalar at its content
(without tag, anchor or quotes; a span when it is on one line).

Inside a string scalar, `place_fragments` maps an offset in the *value* back to the
source: it splits the scalar's source into its lines, decodes each line's content (quote
escapes) with the source column of every character, and finds each line's content, in
order, in the value. Folding and chomping only change the whitespace between lines, so
this works for plain, quoted and block scalars alike.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]

from .errors import Loc, Source

_BLOCK = ("|", ">")
_QUOTES = ("'", '"')
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks
_PROPERTIES = re.compile(r"(?:[!&]\S*(?:\s+|#[^\n]*)*)*")  # tags, anchors, comments
_ESCAPES = yaml.scanner.Scanner.ESCAPE_REPLACEMENTS
_HEX_ESCAPES = yaml.scanner.Scanner.ESCAPE_CODES  # escape letter -> number of hex digits


Entries = dict[str, tuple["YamlNode", "YamlNode"]]  # a mapping's key -> (key node, value node)


class YamlNode:
    """One YAML value's place in the source; an alias shares its target's children."""

    __slots__ = ("start", "end", "style", "text", "items", "size", "height", "target")

    def __init__(
        self,
        start: Any,
        end: Any,
        style: str | None,
        text: str | None,
        items: Entries | list[YamlNode] | None,
        size: int = 1,
        height: int = 0,
        target: YamlNode | None = None,
    ) -> None:
        self.start, self.end = start, end  # the parser's marks (0-based line/column/index)
        self.style = style  # scalar: "" or None (plain), ' " | >; alias: *; collection: None
        self.text = text  # a scalar's string value, before resolution
        self.items = items  # mapping: key -> (key node, value node); sequence: nodes
        self.size = size  # nodes in the subtree, aliases expanded
        self.height = height  # nesting levels of collections in the subtree
        self.target = target  # an alias's anchored node


def line_col(before: str) -> tuple[int, int]:
    """The 1-based line and column just after the text `before`."""
    last = None
    lines = 1
    for last in _BREAK.finditer(before):  # noqa: B007 - the last match is the point
        lines += 1
    return lines, len(before) - (last.end() if last else 0) + 1


def mark_loc(source: Source, mark: Any) -> Loc:
    return Loc(source, mark.line + 1, mark.column + 1)


def _index_loc(source: Source, node: YamlNode, index: int) -> tuple[int, int]:
    """Line and column of text index `index` at or after the node's start mark."""
    line, col = line_col(source.text[node.start.index : index])
    return node.start.line + line, (node.start.column + col if line == 1 else col)


def tag_loc(source: Source, node: YamlNode) -> Loc:
    """The span of a node's tag (after its start, maybe after an anchor)."""
    begin = source.text.find("!", node.start.index, node.end.index)
    if begin < 0:
        return node_loc(source, node)
    line, col = _index_loc(source, node, begin)
    width = len(source.text[begin : node.end.index].split(None, 1)[0])
    return Loc(source, line, col, col + width)


def _head(source: Source, node: YamlNode) -> int:
    """Text index of a scalar's first character after its tag/anchor (a quote, a block
    indicator, or the first character of a plain scalar)."""
    match = _PROPERTIES.match(source.text, node.start.index, node.end.index)
    return match.end() if match else node.start.index


def node_loc(source: Source, node: YamlNode) -> Loc:
    """A collection's start; an alias token; a scalar's content (span if on one line)."""
    if node.style == "*":
        return Loc(source, node.start.line + 1, node.start.column + 1, node.end.column + 1)
    if node.items is not None:
        return mark_loc(source, node.start)
    head = _head(source, node)
    line, col = _index_loc(source, node, head)
    if node.style in _BLOCK:
        return Loc(source, line, col)
    quoted = 1 if node.style in _QUOTES else 0
    if node.end.line + 1 != line or head >= node.end.index - 2 * quoted:
        return Loc(source, line, col + quoted)
    return Loc(source, line, col + quoted, node.end.column + 1 - quoted)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One source line's content of a scalar, decoded, with each character's column."""

    text: str
    line: int
    cols: tuple[int, ...]
    end_col: int


def fragment_loc(source: Source, frag: Fragment, index: int, length: int) -> Loc:
    if index >= len(frag.text):  # between two lines' content, or at the end
        return Loc(source, frag.line, frag.end_col, frag.end_col + length)
    stop = index + length
    end = frag.cols[stop] if stop < len(frag.text) else frag.end_col
    return Loc(source, frag.line, frag.cols[index], end)


def place_fragments(source: Source, node: YamlNode, value: str) -> list[tuple[int, Fragment]]:
    """The scalar's source lines (`Fragment`s), each with its offset in the scalar's
    `value`, in order, up to the first not found."""
    return _placed(_fragments(source, node), value)


def _placed(fragments: list[Fragment], value: str) -> list[tuple[int, Fragment]]:
    """Each fragment with its offset in `value`, in order, up to the first not found."""
    placed, cursor = [], 0
    for frag in fragments:
        start = value.find(frag.text, cursor)
        if start < 0:
            break
        placed.append((start, frag))
        cursor = start + len(frag.text)
    return placed


def _fragments(source: Source, node: YamlNode) -> list[Fragment]:
    """The scalar's content, line by line, without indentation and quotes."""
    begin, stop = _content_range(source, node)
    line, col = _index_loc(source, node, begin)
    fragments = []
    for piece in _BREAK.split(source.text[begin:stop]):
        body = piece.strip(" \t")
        if body:
            first = col + len(piece) - len(piece.lstrip(" \t"))
            fragments.append(_decode(body, node.style, line, first))
        line, col = line + 1, 1
    return fragments


def _content_range(source: Source, node: YamlNode) -> tuple[int, int]:
    head, stop = _head(source, node), node.end.index
    if node.style in _QUOTES:
        return head + 1, max(head + 1, stop - 1)
    if node.style in _BLOCK:  # the content starts on the line after the header
        found = _BREAK.search(source.text, head, stop)
        return (found.end() if found else stop), stop
    return head, stop


def _decode(body: str, style: str | None, line: int, col: int) -> Fragment:
    if style == "'":
        return _decode_single(body, line, col)
    if style == '"':
        return _decode_double(body, line, col)
    return Fragment(body, line, tuple(range(col, col + len(body))), col + len(body))


def _decode_single(body: str, line: int, col: int) -> Fragment:
    chars, cols, i = [], [], 0
    while i < len(body):
        chars.append(body[i])
        cols.append(col + i)
        i += 2 if body.startswith("''", i) else 1
    return Fragment("".join(chars), line, tuple(cols), col + len(body))


def _decode_double(body: str, line: int, col: int) -> Fragment:
    chars, cols, i = [], [], 0
    while i < len(body):
        char, width = _unescape(body, i)
        if char:
            chars.append(char)
            cols.append(col + i)
        i += width
    return Fragment("".join(chars), line, tuple(cols), col + len(body))


def _unescape(body: str, i: int) -> tuple[str, int]:
    """The character at body[i] of a double-quoted scalar, and its source width ('' for
    an escaped line break)."""
    if body[i] != "\\":
        return body[i], 1
    letter = body[i + 1 : i + 2]
    if letter in _ESCAPES:
        return _ESCAPES[letter], 2
    digits = body[i + 2 : i + 2 + _HEX_ESCAPES.get(letter, 0)]
    if letter in _HEX_ESCAPES and len(digits) == _HEX_ESCAPES[letter]:
        code = int(digits, 16)
        return (chr(code) if code <= sys.maxunicode else "\ufffd"), 2 + len(digits)
    return "", 1
