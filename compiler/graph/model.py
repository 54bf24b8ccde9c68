"""The drawing's model: the checked IR as a tree of groups and a graph of visible units.

Node names are dotted paths that follow the spec's structure (`body.repeat.0.basic.relu`),
so the groups are the name prefixes: a prefix with two or more nodes under it is a group
(`body`, `body.repeat`, `body.repeat.0`); a prefix that holds exactly what its one child
group holds is the same group (`body.repeat.0` and `body.repeat.0.basic` draw as one box,
"basic #0"), and `repeat` groups read "basic × 2". A collapsed group draws as one unit with
its total parameters and the shapes that enter and leave it; an expanded one as a box
around its members. By default the spec's top level shows: every top-level group collapsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..dims import format_dim, substitute
from ..errors import UsageError, did_you_mean
from ..ir import Graph, Node, format_value
from ..ops.registry import REGISTRY, REQUIRED
from ..summary import batch_symbols

REPEAT = re.compile(r"repeat(_\d+)?$")  # the names elaboration gives a repeat(n, f)

# Ops that join branches: the edges into them are the residual and concat edges a reader
# looks for, drawn in their own colour. residual(f)'s add takes the skip as its input 0.
MERGE_OPS = {"add": ("residual", None), "residual_add": ("residual", 0),
             "concat": ("concat", None)}  # fmt: skip


@dataclass
class Group:
    path: str  # canonical: the outermost prefix of a chain of same-content prefixes
    label: str
    parent: str | None
    aliases: list[str] = field(default_factory=list)
    leaves: int = 0
    params: int = 0
    ins: list[str] = field(default_factory=list)  # shapes entering, in order, distinct
    outs: list[str] = field(default_factory=list)  # shapes leaving


@dataclass
class Leaf:
    """A graph input, an IR node or a graph output: what an expanded view draws."""

    id: str
    kind: str  # input | node | output
    title: str  # first line: op(args), an input's or output's name
    name: str  # the full IR name
    groups: tuple[str, ...]  # enclosing groups, outermost first
    shape: str
    params: int = 0
    row: str = ""  # its row of `dlc summary`


@dataclass
class Edge:
    src: str  # leaf ids
    dst: str
    shape: str
    kind: str = "data"  # data | residual | concat | tied


@dataclass
class Model:
    name: str
    leaves: list[Leaf]
    edges: list[Edge]
    groups: dict[str, Group]  # by canonical path, parents before children
    alias: dict[str, str]  # every path a user may name -> its canonical path

    def resolve(self, expand: list[str]) -> set[str]:
        """The canonical groups to draw open for `--expand` values (and their parents)."""
        if "all" in expand:
            return set(self.groups)
        out: set[str] = set()
        for path in expand:
            canon = self.alias.get(path)
            if canon is None:
                names = ", ".join(list(self.groups)[:12]) or "none"
                raise UsageError(
                    f"--expand {path}: no group of that name in {self.name}"
                    + did_you_mean(path, self.alias),
                    hint=f"its groups: {names}; or --expand all",
                )
            while canon is not None and canon not in out:
                out.add(canon)
                canon = self.groups[canon].parent
        return out


def _args(node: Node) -> str:
    """The arguments that differ from the op's defaults, as a spec would write them."""
    op = REGISTRY.get(node.op)
    defaults = {a.name: a.default for a in op.args} if op is not None else {}
    order = {name: i for i, name in enumerate(defaults)}  # the signature's order
    parts = []
    for k, v in sorted(node.attrs, key=lambda kv: order.get(kv[0], len(order))):
        d = defaults.get(k, REQUIRED)
        if d is not REQUIRED and d == v:
            continue
        if v is None or (d is REQUIRED and v is False):
            continue
        parts.append(f"{k}={format_value(v)}")
    text = ", ".join(parts)
    if len(text) > 52:
        text = text[:49] + "..."
    return f"{node.op}({text})" if text else node.op


def _num(n: int) -> str:
    return f"{n:,}"


def build_model(graph: Graph) -> Model:
    per_example = batch_symbols(graph)
    leaves: list[Leaf] = []
    for i in graph.inputs:
        leaves.append(Leaf("i:" + i.name, "input", i.name, i.name, (), str(i.type),
                           row=f"{i.name}  input  {i.type}  0  0"))  # fmt: skip
    prefix_count: dict[str, int] = {}
    for n in graph.nodes:
        parts = n.name.split(".")
        for k in range(1, len(parts)):
            p = ".".join(parts[:k])
            prefix_count[p] = prefix_count.get(p, 0) + 1
    # A prefix with one node is no group; a chain of prefixes holding the same nodes is one.
    canon: dict[str, str] = {}
    groups: dict[str, Group] = {}
    alias: dict[str, str] = {}
    for n in graph.nodes:
        parts = n.name.split(".")
        prev: str | None = None
        for k in range(1, len(parts)):
            p = ".".join(parts[:k])
            if prefix_count[p] < 2 or p in canon:
                if p in canon:
                    prev = canon[p]
                continue
            if prev is not None and prefix_count[p] == prefix_count.get(prev, 0):
                canon[p] = prev  # same content as its parent group: one box
                groups[prev].aliases.append(p)
                alias[p] = prev
                continue
            canon[p] = p
            alias[p] = p
            groups[p] = Group(p, parts[k - 1], prev)
            prev = p
    children: dict[str, list[Group]] = {}
    for g in groups.values():
        if g.parent is not None:
            children.setdefault(g.parent, []).append(g)
    for g in groups.values():
        g.label = _chain_label([q.rsplit(".", 1)[-1] for q in [g.path, *g.aliases]])
    for g in groups.values():  # repeat groups: "basic × 2"
        kids = children.get(g.path, [])
        if (REPEAT.match(g.path.rsplit(".", 1)[-1]) and kids
                and all(c.path.rsplit(".", 1)[-1].isdigit() for c in kids)):  # fmt: skip
            inner = {c.label.split(" #")[0] for c in kids}
            name = inner.pop() if len(inner) == 1 else g.label
            g.label = f"{name} × {len(kids)}"
    types = {k: str(t) for k, t in graph.types().items()}  # each value's shape, as text
    for n in graph.nodes:
        parts = n.name.split(".")
        enclosing: list[str] = []
        for k in range(1, len(parts)):
            c = canon.get(".".join(parts[:k]))
            if c is not None and (not enclosing or enclosing[-1] != c):
                enclosing.append(c)
        flops = substitute(n.flops, per_example)
        f = _num(flops) if isinstance(flops, int) else format_dim(flops)
        row = f"{n.name}  {n.op}  {types[n.name]}  {_num(n.num_params)}  {f}"
        title = _args(n)
        short = n.name.rsplit(".", 1)[-1]
        if not n.op.endswith(short.rstrip("0123456789").rstrip("_")):  # the spec's own name
            title = f"{short} = {title}"
        leaves.append(Leaf("n:" + n.name, "node", title, n.name, tuple(enclosing),
                           types[n.name], n.num_params, row))  # fmt: skip
        for c in enclosing:
            groups[c].leaves += 1
            groups[c].params += n.num_params
    by_id = {lf.id: lf for lf in leaves}
    ref = {i.name: "i:" + i.name for i in graph.inputs}
    ref.update((n.name, "n:" + n.name) for n in graph.nodes)
    edges: list[Edge] = []
    for n in graph.nodes:
        kind, which = MERGE_OPS.get(n.op, ("data", None))
        for k, v in enumerate(n.inputs):
            how = kind if which is None or k == which else "data"
            edges.append(Edge(ref[v], "n:" + n.name, types[v], how))
        for v in n.weights_of:  # dense(tie=emb) reads emb's table
            edges.append(Edge(ref[v], "n:" + n.name, "tied weights", "tied"))
    for out_name, v in graph.outputs:
        leaves.append(Leaf("o:" + out_name, "output", out_name, out_name, (), types[v],
                           row=f"{out_name}  output  {types[v]}"))  # fmt: skip
        edges.append(Edge(ref[v], "o:" + out_name, types[v]))
    by_id = {lf.id: lf for lf in leaves}
    for e in edges:  # the shapes that enter and leave each group
        if e.kind == "tied":
            continue
        a, b = by_id[e.src].groups, by_id[e.dst].groups
        for path in b:
            if path not in a and e.shape not in groups[path].ins:
                groups[path].ins.append(e.shape)
        for path in a:
            if path not in b and e.shape not in groups[path].outs:
                groups[path].outs.append(e.shape)
    return Model(graph.name, leaves, edges, groups, alias)


def _chain_label(segments: list[str]) -> str:
    """The label of a chain of prefixes drawn as one group, from their last segments:
    `0 basic` (a repeat's block) is "basic #0", `layer1 layer` (a block's call) is
    "layer1 (layer)", `repeat 0 inverted_res residual` (a repeat of one) "inverted_res × 1"."""
    words = [s for s in segments if not s.isdigit()]
    if segments[0].isdigit():
        return f"{words[0]} #{segments[0]}" if words else f"#{segments[0]}"
    if len(segments) > 1 and segments[1].isdigit() and REPEAT.match(segments[0]):
        return f"{words[1] if len(words) > 1 else words[0]} × 1"
    return words[0] + (f" ({words[1]})" if len(words) > 1 else "")


def group_row(g: Group) -> str:
    return (f"{g.path}  group of {g.leaves} nodes  in {', '.join(g.ins) or '-'}  "
            f"out {', '.join(g.outs) or '-'}  params {_num(g.params)}")  # fmt: skip


def as_json(model: Model) -> dict[str, Any]:
    """Everything the HTML page needs to draw any expansion state itself."""
    return {
        "name": model.name,
        "leaves": [[lf.id, lf.kind, lf.title, lf.name, list(lf.groups), lf.shape,
                    lf.params, lf.row] for lf in model.leaves],  # fmt: skip
        "edges": [[e.src, e.dst, e.shape, e.kind] for e in model.edges],
        "groups": [[g.path, g.label, g.parent, g.leaves, g.params, g.ins, g.outs, group_row(g)]
                   for g in model.groups.values()],  # fmt: skip
    }
