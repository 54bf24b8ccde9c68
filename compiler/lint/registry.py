"""The lint rules' registry and what a rule sees.

A rule is a function from a `LintContext` (the checked spec: its typed IR graph, its
training plan, where things stand in the file) to `Finding`s, registered once with a
stable id (`DLC101`), a short name, a title and a doc line. The ids never change meaning:
specs silence them by id, and CI scripts read them from `dlc lint --json`. Rules read the
IR and the plan only; none runs the model, and none imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import Diagnostic, Loc
from ..ir import Graph, Node

if TYPE_CHECKING:
    from ..pipeline import Checked
    from ..training import TrainingPlan
    from .data import DataInfo


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's warning: what is wrong and why, where, and the fix."""

    message: str
    loc: Loc | None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class Lint:
    """A finding of a registered rule, ready to print (`diagnostic`) or to serialize."""

    rule: str
    message: str
    loc: Loc | None
    hint: str | None = None
    severity: str = "warning"

    @property
    def diagnostic(self) -> Diagnostic:
        # The id closes the message, as a C compiler names its warning flag: [-Wshadow].
        return Diagnostic(f"{self.message} [{self.rule}]", self.loc, self.hint, self.severity)

    def render(self) -> str:
        return self.diagnostic.render()

    def to_json(self) -> dict[str, Any]:
        loc = self.loc
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "end_col": loc.end_col if loc else None,
        }


Check = Callable[["LintContext"], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    title: str
    doc: str
    check: Check = field(repr=False)


RULES: dict[str, Rule] = {}


def rule(id: str, name: str, title: str, doc: str) -> Callable[[Check], Check]:
    """Register `check` as rule `id`."""

    def register(check: Check) -> Check:
        assert id not in RULES, f"lint rule {id} registered twice"
        RULES[id] = Rule(id, name, title, doc, check)
        for key in sorted(RULES):  # in id order, whichever module registered first
            RULES[key] = RULES.pop(key)
        return check

    return register


class LintContext:
    """The checked spec as the rules read it, with the lookups several rules share."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.graph: Graph = checked.graph
        self.plan: TrainingPlan | None = checked.training
        live = self.graph.live()
        self.nodes: tuple[Node, ...] = tuple(n for n in self.graph.nodes if n.name in live)
        self.by_name = {n.name: n for n in self.nodes}
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                users.setdefault(i, []).append(n)
        self.users = users

    def consumers(self, value: str) -> list[Node]:
        return self.users.get(value, [])

    def producer(self, value: str) -> Node | None:
        return self.by_name.get(value)

    def output_node(self, output: str) -> Node | None:
        """The node that computes the model output `output`."""
        value = dict(self.graph.outputs).get(output)
        return None if value is None else self.producer(value)

    def spec_loc(self, *path: str | int) -> Loc | None:
        """Where `path` (a key path into the spec, e.g. training, batch_size) stands."""
        return self.checked.spec.document.loc(path)

    @cached_property
    def data(self) -> DataInfo | None:
        from .data import data_info

        return data_info(self)

    def walk_through(self, node: Node, skip: frozenset[str]) -> Iterator[Node]:
        """The nodes that read `node`'s output, looking through ops in `skip` (a
        dropout or a reshape between a layer and its activation)."""
        for user in self.consumers(node.name):
            if user.op in skip:
                yield from self.walk_through(user, skip)
            else:
                yield user
