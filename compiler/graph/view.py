"""One expansion state of a model: the units to draw (leaves and collapsed groups), the
edges between them (merged where several leaf edges join the same two units), and the open
groups that frame them. Shared by every output format."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Model, group_row


@dataclass
class Unit:
    id: str
    kind: str  # input | node | output | group
    lines: tuple[str, ...]  # the label, line by line
    parent: str | None  # the open group that frames it
    row: str  # the tooltip: its row of `dlc summary`


@dataclass
class View:
    units: list[Unit]  # in the IR's order (a topological order of the leaves)
    edges: list[tuple[int, int, str, str]]  # unit index -> unit index, shape, kind
    open_groups: dict[str, tuple[str, str | None]]  # path -> (label, parent open group)


def _pnum(n: int) -> str:
    return f"{n:,} params" if n else ""


def make_view(model: Model, expanded: set[str]) -> View:
    units: list[Unit] = []
    index: dict[str, int] = {}
    rep: dict[str, int] = {}
    for lf in model.leaves:
        key, parent = lf.id, None
        for path in lf.groups:
            if path not in expanded:
                key = "g:" + path
                break
            parent = path
        if key not in index:
            index[key] = len(units)
            if key.startswith("g:"):
                g = model.groups[key[2:]]
                shapes = f"{', '.join(g.ins) or '-'} → {', '.join(g.outs) or '-'}"
                size = f"{g.leaves} nodes  {_pnum(g.params)}".rstrip()
                lines: tuple[str, ...] = (f"▸ {g.label}", size, shapes)
                units.append(Unit(key, "group", lines, parent, group_row(g)))
            else:
                lines = (lf.title,) + ((_pnum(lf.params),) if lf.params else ())
                if lf.kind != "node":
                    lines = (lf.title, lf.shape)
                units.append(Unit(key, lf.kind, lines, parent, lf.row))
        rep[lf.id] = index[key]
    seen: set[tuple[int, int]] = set()
    edges: list[tuple[int, int, str, str]] = []
    for e in model.edges:
        a, b = rep[e.src], rep[e.dst]
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            edges.append((a, b, e.shape, e.kind))
    open_groups = {p: (model.groups[p].label, model.groups[p].parent) for p in model.groups
                   if p in expanded}  # fmt: skip
    return View(units, edges, open_groups)
