"""Diagnostics: one error root, one subclass per phase, every message located.

Every stage of the compiler reports a user's mistake as a `Diagnostic`: a message, the
place in the spec file it concerns (`Loc`: file, line and column counted from 1, and
an optional end column for the caret span), an optional hint, and a severity. A stage
that can find several independent mistakes collects them and raises its phase's
`DlcError` subclass carrying all of them; `render` prints them the way a compiler does:

    spec.yaml:12:5: error: unknown op 'dens' (did you mean 'dense'?)
       12 |   - dens(128) -> relu
          |     ^^^^

`assert` is for our own invariants; anything a user can cause is a `DlcError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Source:
    """A text dlc read (a spec file, a --set value, an inline YAML string)."""

    name: str
    text: str = field(repr=False)

    def line(self, n: int) -> str:
        lines = self.text.splitlines()
        return lines[n - 1] if 1 <= n <= len(lines) else ""


class Loc(NamedTuple):
    """A position in a source: line and column count from 1; `end_col` is exclusive.

    A named tuple: immutable, and cheap enough to give every AST node one."""

    source: Source | None
    line: int
    col: int
    end_col: int | None = None

    @property
    def file(self) -> str:
        return self.source.name if self.source else "<spec>"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, offset: int, length: int | None = None) -> Loc:
        """The location `offset` characters further on the same line."""
        col = self.col + offset
        return Loc(self.source, self.line, col, None if length is None else col + length)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located message. `notes` are located lines printed after it, such as the
    chain of block calls that led to a mistake inside a block's body."""

    message: str
    loc: Loc | None = None
    hint: str | None = None
    severity: str = "error"  # "error" | "warning" | "note"
    notes: tuple[Diagnostic, ...] = ()

    def render(self, *, context: bool = True) -> str:
        where = f"{self.loc}: " if self.loc else ""
        out = [f"{where}{self.severity}: {self.message}"]
        if context and self.loc and self.loc.source:
            text = self.loc.source.line(self.loc.line).rstrip("\n")
            if text.strip():
                gutter = str(self.loc.line)
                pad = " " * len(gutter)
                width = max(1, (self.loc.end_col or self.loc.col + 1) - self.loc.col)
                width = min(width, max(1, len(text) - self.loc.col + 1))
                out.append(f" {gutter} | {text}")
                out.append(f" {pad} | {' ' * (self.loc.col - 1)}{'^' * width}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        out.extend(note.render(context=context) for note in self.notes)
        return "\n".join(out)


class DlcError(Exception):
    """The root of every error dlc reports to a user. Carries one or more diagnostics."""

    phase = "error"

    def __init__(
        self,
        message: str | Sequence[Diagnostic],
        loc: Loc | None = None,
        hint: str | None = None,
    ) -> None:
        if isinstance(message, str):
            diags: tuple[Diagnostic, ...] = (Diagnostic(message, loc, hint),)
        else:
            diags = tuple(message)
        assert diags, "a DlcError needs at least one diagnostic"
        self.diagnostics = diags
        super().__init__(self.render(context=False))

    @property
    def message(self) -> str:
        return self.diagnostics[0].message

    @property
    def loc(self) -> Loc | None:
        return self.diagnostics[0].loc

    @property
    def hint(self) -> str | None:
        return self.diagnostics[0].hint

    def render(self, *, context: bool = True) -> str:
        return "\n".join(d.render(context=context) for d in self.diagnostics)


class LoadError(DlcError):
    """The file cannot be read as safe YAML within dlc's limits."""

    phase = "load"


class SchemaError(DlcError):
    """The document does not match the JSON Schema of a spec."""

    phase = "schema"


class ExprSyntaxError(DlcError):
    """An expression string does not parse."""

    phase = "syntax"


class ElaborationError(DlcError):
    """Names, arguments, params, blocks or graph structure are wrong."""

    phase = "elaborate"


class ShapeError(DlcError):
    """Tensor shapes do not fit together."""

    phase = "shape"


class UsageError(DlcError):
    """A command-line argument is wrong (a --set, a missing file)."""

    phase = "usage"


class DataError(DlcError):
    """Training data cannot be read, or does not fit the model's inputs and outputs."""

    phase = "data"


class TrainError(DlcError):
    """A training run cannot start or had to stop (a NaN loss, a refused optimizer)."""

    phase = "train"


class Collector:
    """Gathers independent diagnostics of one phase, then raises them together."""

    def __init__(self, error_type: type[DlcError]) -> None:
        self.error_type = error_type
        self.items: list[Diagnostic] = []
        self.kinds: set[type[DlcError]] = set()

    def add(self, message: str, loc: Loc | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(message, loc, hint))
        self.kinds.add(self.error_type)

    def extend(self, err: DlcError, notes: tuple[Diagnostic, ...] = ()) -> None:
        """Add `err`'s diagnostics; `notes` go to those that have none of their own."""
        if notes:
            self.items.extend(d if d.notes else replace(d, notes=notes) for d in err.diagnostics)
        else:
            self.items.extend(err.diagnostics)
        self.kinds.add(type(err))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise the errors collected: as their own class when they share one (a lone
        syntax error stays an ExprSyntaxError), else as this phase's."""
        if self.items:
            kind = next(iter(self.kinds)) if len(self.kinds) == 1 else self.error_type
            raise kind(self.items)


def did_you_mean(word: str, *pools: Iterable[str]) -> str:
    """' (did you mean 'dense'?)' or '' when nothing is close. Earlier pools win: pass
    the spec's own names (blocks, nodes) before the built-in ones."""
    for pool in pools:
        close = difflib.get_close_matches(word, list(pool), n=1, cutoff=0.6)
        if close:
            return f" (did you mean '{close[0]}'?)"
    return ""
