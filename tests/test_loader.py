"""Tests of the spec loader (`dlc.compiler.loader`).

What they pin down: every rule the loader enforces fails with its message at the exact
`line:col` of the spec; scalars resolve by dlc's YAML-1.2-like table (`yes` stays a
string, `3e-4` is a float); `loc`, `key_loc` and `text_loc` point at the spec's own
characters, also inside quoted and block scalars; a 'billion laughs' document fails fast;
a 10,000-line spec loads fast; and no text at all makes the loader raise anything but a
`LoadError`. Most tests run under both parsers PyYAML offers (libyaml and pure Python).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:  # installed (pip install -e .), as the other tests import it
    from dlc.compiler import loader
except ModuleNotFoundError:  # a bare checkout run from its root: the folders themselves
    from compiler import loader  # type: ignore[no-redef]

LoadError = loader.LoadError
C_PARSER = getattr(yaml, "CSafeLoader", None)
PARSERS = [
    pytest.param(C_PARSER, id="libyaml", marks=pytest.mark.skipif(not C_PARSER, reason="no C")),
    pytest.param(yaml.SafeLoader, id="python"),
]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the test under each YAML parser."""
    monkeypatch.setattr(loader, "_PARSER", request.param)
    return request.param


def error_of(text: str) -> LoadError:
    with pytest.raises(LoadError) as info:
        loader.load_text(text, "spec.yaml")
    return info.value


def bomb(levels: int = 9) -> str:
    """The 'billion laughs' document: each level holds 9 aliases of the one before."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


DUPLICATE = """\
dlc: 1
name: t
inputs:
  x: [B, 16]
model: [dense(4)]
training:
  epochs: 7
  lr: 0.1
  epochs: 9
"""

# (id, text, message substring, line:col)
ERRORS = [
    ("python-tag", "a: !!python/object/apply:os.system [ls]", "Python tags are not allowed", "1:4"),
    ("python-name", "a: 1\nb: !!python/name:os.system ''", "dlc never runs code", "2:4"),
    ("local-tag", "a: !foo x", "unsupported YAML tag '!foo'", "1:4"),
    ("binary-tag", "a:\n  b: !!binary aGk=", "unsupported YAML tag '!!binary'", "2:6"),
    ("set-tag", "a: !!set {x: null}", "unsupported YAML tag '!!set'", "1:4"),
    ("timestamp-tag", "a: !!timestamp 2024-01-01", "unsupported YAML tag", "1:4"),
    ("str-on-seq", "a: !!str [1]", "'!!str' cannot be used on a sequence", "1:4"),
    ("bad-int", "a: !!int ten", "'ten' is not a valid !!int", "1:10"),
    ("merge-key", "base: &b {x: 1}\nc:\n  <<: *b\n", "YAML merge keys are not supported", "3:3"),
    ("seq-key", "a: 1\n? [x, y]\n: 2", "a mapping key must be a scalar", "2:3"),
    ("map-key", "{a: 1}: 2", "a mapping key must be a scalar", "1:1"),
    ("duplicate", DUPLICATE, "duplicate key 'epochs' (first defined at line 7)", "9:3"),
    ("duplicate-flow", "a: {x: 1, x: 2}", "duplicate key 'x' (first defined at line 1)", "1:11"),
    ("deep-flow", "a: " + "[" * 70 + "]" * 70, "nesting is deeper than 64 levels", "1:67"),
    (
        "deep-alias",
        "x: &x " + "[" * 40 + "]" * 40 + "\ny: " + "[" * 30 + "*x" + "]" * 30,
        "once aliases expand",
        "2:34",
    ),
    ("bomb", bomb(), "YAML alias expansion exceeds 1000000 nodes (a 'billion laughs'", "7:8"),
    ("undefined-alias", "a: 1\nb: *nope", "undefined alias '*nope'", "2:4"),
    ("recursive-alias", "a: &a [1, *a]", "recursive alias '*a'", "1:11"),
    ("empty", "", "empty spec", "1:1"),
    ("comments-only", "# just\n# comments\n", "empty spec", "1:1"),
    ("bare-marker", "---\n", "empty spec", "1:1"),
    ("two-docs", "a: 1\n---\nb: 2\n", "found a second one", "2:1"),
    ("two-marked-docs", "---\na: 1\n---\nb: 2\n", "found a second one", "3:1"),
    ("mapping-values", "model:\n  x: a: b\n", "mapping values are not allowed", "2:7"),
    ("tab-indent", "a:\n\tb: 1\n", "cannot start any token", "2:1"),
    ("unclosed-quote", 'a: "abc\n', "found unexpected end of stream", "2:1"),
    ("bad-escape", 'a: "\\UFFFFFFFF"', "escape", "1:7"),
    ("control-char", "a: 1\nb: x\x01y", "character U+0001 is not allowed", "2:5"),
    ("top-sequence", "- dlc: 1\n- name: t\n", "a spec is a YAML mapping (dlc: 1, name: ...", "1:1"),
    ("top-scalar", "  just words", "a spec is a YAML mapping", "1:3"),
    ("long-int", "a: " + "9" * 5000, "integer too long", "1:4"),
    ("surrogate", "a: 1\nb: \ud800", "lone surrogate", "2:4"),
]


@pytest.mark.parametrize(
    ("text", "message", "where"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error(parser: Any, text: str, message: str, where: str) -> None:
    err = error_of(text)
    assert message in err.message
    assert str(err.loc) == f"spec.yaml:{where}"


def test_error_hints(parser: Any) -> None:
    assert "write the keys out" in (error_of("a: &a {x: 1}\nb: {<<: *a}").hint or "")
    assert "spaces, not tabs" in (error_of("a:\n\tb: 1\n").hint or "")


def test_syntax_error_keeps_context(parser: Any) -> None:
    err = error_of("a: [1, 2\n")
    assert "while parsing a flow sequence at line 1, column 4" in err.message


def test_oversized_text() -> None:
    err = error_of("a: " + "x" * loader.MAX_BYTES)
    assert err.loc is None
    assert f"{loader.MAX_BYTES + 3} bytes" in err.message
    assert f"limit is {loader.MAX_BYTES} bytes" in err.message


def test_bomb_fails(parser: Any) -> None:
    # The limit is checked before an alias is copied, so this returns at once (an
    # expanding loader would not return at all); speed is for benchmarks, not tests.
    assert "billion laughs" in error_of(bomb()).message


def test_alias_budget_allows_moderate_reuse(parser: Any) -> None:
    doc = loader.load_text(bomb(5))  # 9**4 'lol's: big but under the budget
    assert len(doc.data["e"]) == 9 and doc.data["e"][8][8][8][8] == ["lol"] * 9


# ------------------------------------------------------------------------ files


def test_file_not_found(tmp_path: Any) -> None:
    with pytest.raises(LoadError, match="no such file") as info:
        loader.load_file(tmp_path / "missing.yaml")
    assert str(tmp_path / "missing.yaml") in info.value.message


def test_file_is_directory(tmp_path: Any) -> None:
    with pytest.raises(LoadError, match="is a directory"):
        loader.load_file(tmp_path)


def test_file_size_checked_before_reading(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as file:
        file.truncate(loader.MAX_BYTES + 1)
    monkeypatch.setattr(loader, "open", _refuse_open, raising=False)
    with pytest.raises(LoadError) as info:
        loader.load_file(big)
    assert f"{loader.MAX_BYTES + 1} bytes" in info.value.message
    assert f"limit is {loader.MAX_BYTES} bytes" in info.value.message


def _refuse_open(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the file was opened before its size was checked")


def test_file_not_utf8(tmp_path: Any) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("dlc: 1\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(LoadError, match="not UTF-8") as info:
        loader.load_file(path)
    assert str(info.value.loc) == f"{path}:2:10"


def test_file_name_and_bom(tmp_path: Any) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xef\xbb\xbfdlc: 1\nname: t\n")
    doc = loader.load_file(path)
    assert doc.source.name == str(path) and doc.data == {"dlc": 1, "name": "t"}
    assert str(doc.key_loc(("dlc",))) == f"{path}:1:1"
    named = loader.load_file(str(path), name="shown.yaml")
    assert str(named.loc(("name",))) == "shown.yaml:2:7"


# -------------------------------------------------------------------- locations

SPEC = """\
dlc: 1
model:
  - dense(256) -> relu
  - "dens(128) -> relu"
  - 'it''s dens(1)'
  - "tab\\there dens(2) \\u00e9 dens(3)"
  - !!str dens(4) -> relu
training:
  epochs: 7
  opt: &opt {name: adam, lr: 3e-4}
  again: *opt
block: |
  first line
    indented dens(5)
folded: >-
  one two
  dens(6) three

  last dens(7)
plain: word and
  dens(8) continued
"""


@pytest.fixture
def doc(parser: Any) -> loader.Document:
    return loader.load_text(SPEC, "spec.yaml")


def where(loc: Any) -> tuple[int, int, int | None]:
    return loc.line, loc.col, loc.end_col


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("model", 0), (3, 5, 23)),  # plain: its content span
        (("model", 1), (4, 6, 23)),  # quoted: the quotes excluded
        (("model", 4), (7, 11, 26)),  # tagged: the content, not the tag
        (("model",), (3, 3, None)),  # a sequence: its first '-'
        (("training",), (9, 3, None)),  # a mapping: its first key
        (("training", "epochs"), (9, 11, 12)),
        (("training", "opt", "lr"), (10, 30, 34)),
        (("training", "again"), (11, 10, 14)),  # an alias: the alias itself
        (("training", "again", "lr"), (10, 30, 34)),  # inside it: the anchored value
        (("block",), (12, 8, None)),  # a block scalar: its indicator
        (("plain",), (20, 8, None)),  # a multi-line scalar: where it starts
        (("model", 99), (3, 3, None)),  # missing: the nearest existing ancestor
        (("training", "nope", 3), (9, 3, None)),
        ((), (1, 1, None)),
    ],
)
def test_loc(doc: loader.Document, path: loader.Path, expected: tuple[int, int, int]) -> None:
    assert where(doc.loc(path)) == expected


def test_key_loc(doc: loader.Document) -> None:
    assert where(doc.key_loc(("training", "epochs"))) == (9, 3, 9)
    assert where(doc.key_loc(("training", "opt", "lr"))) == (10, 26, 28)
    assert where(doc.key_loc(("training", "again", "lr"))) == (10, 26, 28)
    assert where(doc.key_loc(("model", 1))) == where(doc.loc(("model", 1)))  # not a key
    assert where(doc.key_loc(("nope",))) == (1, 1, None)


@pytest.mark.parametrize(
    ("path", "offset", "length", "expected"),
    [
        (("model", 0), 6, 3, (3, 11, 14)),  # plain
        (("model", 1), 0, 4, (4, 6, 10)),  # double-quoted
        (("model", 2), 5, 4, (5, 12, 16)),  # single-quoted, after a '' escape
        (("model", 2), 2, 1, (5, 8, 10)),  # the '' escape itself: two source chars
        (("model", 3), 9, 4, (6, 16, 20)),  # after \t: one char, two in the source
        (("model", 3), 19, 4, (6, 31, 35)),  # after \u00e9: one char, six in the source
        (("model", 4), 0, 4, (7, 11, 15)),  # tagged
        (("training", "again", "name"), 1, 2, (10, 21, 23)),  # through an alias
        (("block",), 22, 4, (14, 14, 18)),  # literal block, more indented line
        (("folded",), 8, 4, (17, 3, 7)),  # folded block, second line
        (("folded",), 27, 4, (19, 8, 12)),  # folded block, after an empty line
        (("plain",), 9, 4, (21, 3, 7)),  # multi-line plain
        (("model", 0), 18, 1, (3, 23, 24)),  # the end of the string: just after it
        (("folded",), 7, 1, (16, 10, 11)),  # a folded line break: the end of its line
    ],
)
def test_text_loc(
    doc: loader.Document,
    path: loader.Path,
    offset: int,
    length: int,
    expected: tuple[int, int, int],
) -> None:
    loc = doc.text_loc(path, offset, length)
    assert where(loc) == expected
    value = _value_at(doc.data, path)
    if value[offset : offset + length].isalnum():  # the source shows the same characters
        assert doc.source.line(loc.line)[loc.col - 1 : loc.end_col - 1] == value[offset:][:length]


def _value_at(data: Any, path: loader.Path) -> Any:
    for step in path:
        data = data[step]
    return data


def test_text_loc_falls_back(doc: loader.Document) -> None:
    assert doc.text_loc(("model", 0), 99) == doc.loc(("model", 0))  # past the end
    assert doc.text_loc(("model", 0), -1) == doc.loc(("model", 0))
    assert doc.text_loc(("training",), 0) == doc.loc(("training",))  # not a scalar
    assert doc.text_loc(("model", 42), 0) == doc.loc(("model",))  # no such value


def test_columns_count_characters(parser: Any) -> None:
    doc = loader.load_text('caf\u00e9:\r\n  \u00e9t\u00e9: "\u00e9 dens(1)"\r\n')
    assert where(doc.key_loc(("caf\u00e9", "\u00e9t\u00e9"))) == (2, 3, 6)
    assert where(doc.text_loc(("caf\u00e9", "\u00e9t\u00e9"), 2, 4)) == (2, 11, 15)


def test_document_without_locations() -> None:
    doc = loader.Document(loader.Source("x.yaml", "a: 1\n"), {"a": 1})
    assert str(doc.loc(("a",))) == "x.yaml:1:1" and str(doc.text_loc(("a",), 0)) == "x.yaml:1:1"


# ---------------------------------------------------------------------- scalars

SCALARS = [
    ("3e-4", 3e-4),
    ("1e5", 1e5),
    ("1E+5", 1e5),
    ("-2.5", -2.5),
    (".5", 0.5),
    ("5.", 5.0),
    ("+12", 12),
    ("-7", -7),
    ("007", 7),
    ("0x10", 16),
    ("0o17", 15),
    ("0", 0),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("tRUE", "tRUE"),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("~", None),
    ("", None),
    (".inf", math.inf),
    ("-.inf", -math.inf),
    ("+.Inf", math.inf),
    ("2024-01-01", "2024-01-01"),
    ("1_000", "1_000"),
    ("0x", "0x"),
    ("1.2.3", "1.2.3"),
    ("'1'", "1"),
    ('"true"', "true"),
    ("'null'", "null"),
    ("! 12", "12"),
    ("!!str 3", "3"),
    ("!!float 1", 1.0),
    ('!!int "12"', 12),
    ("!!bool false", False),
    ("!!null ''", None),
    ("|-\n  12", "12"),
    ("dense(4) -> relu", "dense(4) -> relu"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS, ids=[s[0] or "empty" for s in SCALARS])
def test_scalar_resolution(parser: Any, text: str, expected: Any) -> None:
    value = loader.load_text(f"v: {text}\n").data["v"]
    assert type(value) is type(expected) and value == expected


def test_nan(parser: Any) -> None:
    assert math.isnan(loader.load_text("v: .nan").data["v"])


def test_keys_are_their_source_text(parser: Any) -> None:
    data = loader.load_text("1: a\ntrue: b\n~: c\n3e-4: d\n'q': e\n").data
    assert list(data) == ["1", "true", "~", "3e-4", "q"]


def test_aliases_expand_to_independent_copies(parser: Any) -> None:
    data = loader.load_text("a: &a {x: [1, 2]}\nb: *a\n").data
    assert data["a"] == data["b"] and data["a"] is not data["b"]
    data["b"]["x"].append(3)
    assert data["a"]["x"] == [1, 2]


def test_ten_thousand_lines_load_with_libyaml() -> None:
    # Speed is measured by tests/bench_check.py; here only that the fast parser is there.
    assert C_PARSER, "PyYAML without libyaml: the pure-Python parser is ~10x slower"
    lines = ["dlc: 1", "name: big", "model:"]
    lines += [f"  - dense({i}) -> relu  # layer {i}" for i in range(5000)]
    lines += ["blocks:"] + [f"  b{i}: {{params: {{n: {i}, lr: 3e-4}}}}" for i in range(5000)]
    doc = loader.load_text("\n".join(lines) + "\n")
    assert len(doc.data["model"]) == 5000 and doc.data["blocks"]["b9"]["params"]["lr"] == 3e-4


# -------------------------------------------------------------------------- fuzz

VALID = SPEC.replace("opt: &opt", "opt: &o").replace("*opt", "*o")
PIECES = list(" -:[]{},#&*!|>'\"\\\n\t?%@`~.0e+x<\r") + [
    "!!python/name:os.system",
    "!!str",
    "!!int",
    "<<",
    "&a",
    "*a",
    "*o",
    "---",
    "...",
    "\\U0010FFFF",
    "\\UFFFFFFFF",
    "- ",
    ": ",
    "\n  ",
    "\n    ",
    "\u00e9",
    "\x00",
    "\ufeff",
]


@st.composite
def mutations(draw: st.DrawFn) -> str:
    """The valid spec with a few random insertions, deletions and overwrites."""
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)))
        cut = draw(st.sampled_from([0, len(piece), draw(st.integers(1, 12))]))
        text = text[:at] + piece + text[at + cut :]
    return text


TEXTS = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES + ["a", "b", "1"]), max_size=80).map("".join),
    mutations(),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=TEXTS)
def test_fuzz_only_load_errors(parser: Any, text: str) -> None:
    try:
        doc = loader.load_text(text, "fuzz.yaml")
    except LoadError as err:
        assert err.loc is None or (err.loc.line >= 1 and err.loc.col >= 1)
        err.render()
        return
    for path, value in _paths(doc.data, ()):
        assert doc.loc(path).line >= 1 and doc.key_loc(path).col >= 1
        if isinstance(value, str):
            for offset in range(0, len(value) + 1, 3):
                assert doc.text_loc(path, offset, 2).col >= 1


def _paths(value: Any, path: loader.Path) -> Iterator[tuple[loader.Path, Any]]:
    """Every path in the data, with its value."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))
