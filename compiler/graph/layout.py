"""A layered (Sugiyama) layout, top to bottom, in near-linear time.

Why our own: the drawing must come from Python with no system binary (Graphviz) and in
seconds at 10,000 nodes. grandalf, the pure-Python Sugiyama package, does the same steps
but its crossing reduction and coordinate assignment are far from linear; the steps here
are the textbook ones, each capped so the whole stays O((V + E) log V):

1. layers: longest path from the sources, in the IR's order (a topological order; an edge
   that points back, which only collapsing can make, is laid out reversed);
2. long edges get a dummy vertex per layer they cross (at most MAX_SPAN; a longer edge is
   drawn straight), so they route around the nodes in between;
3. order within a layer: a fixed number of barycenter sweeps down and up (no all-pairs
   crossing count);
4. x: each layer is placed at its neighbours' mean x subject to the minimum gaps, which is an
   isotonic regression solved exactly by pool-adjacent-violators, alternating down and up.

The HTML page runs the same steps in JavaScript (layout.js) for each expansion state.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SPAN = 40  # longest edge (in layers) that gets dummy vertices
SWEEPS = 4  # barycenter passes, each down then up
PLACE_PASSES = 4
DUMMY_WEIGHT = 0.05  # a long edge's bend gives way to a node that wants the same place
SEPARATE_CAP = 50  # earlier sibling groups a group is kept clear of
NODE_SEP = 28.0
RANK_SEP = 50.0


@dataclass
class Layout:
    x: list[float]  # centres, one per vertex (units first, then dummies)
    y: list[float]
    width: float
    height: float
    routes: list[list[tuple[float, float]]]  # per edge: the points it passes through


FRAME_TOP = 20.0  # room above a frame's first layer for its label, per frame that opens there
FRAME_SIDE = 6.0  # a frame's margin on the other sides


def layered_layout(sizes: list[tuple[float, float]], edges: list[tuple[int, int]],
                   frames: list[tuple[str, ...]] | None = None) -> Layout:
    """`frames`: per vertex, the open groups around it (outermost first); the layers where
    groups open or close get the room their frames need."""
    n = len(sizes)
    layer = [0] * n
    fwd = [(a, b) if a < b else (b, a) for a, b in edges]
    preds: list[list[int]] = [[] for _ in range(n)]
    for a, b in fwd:
        preds[b].append(a)
    for v in range(n):
        for p in preds[v]:
            if layer[p] + 1 > layer[v]:
                layer[v] = layer[p] + 1
    w = [s[0] for s in sizes]
    h = [s[1] for s in sizes]
    up: list[list[int]] = [[] for _ in range(n)]
    down: list[list[int]] = [[] for _ in range(n)]
    chains: list[list[int]] = []  # per edge: its vertices, top to bottom
    group: list[tuple[str, ...]] = list(frames) if frames else [()] * n
    for a, b in fwd:
        chain = [a]
        span = layer[b] - layer[a]
        if 1 < span <= MAX_SPAN:
            common = _common(group[a], group[b])  # a bend stays in the groups of both ends
            for k in range(1, span):
                d = len(layer)
                group.append(common)
                layer.append(layer[a] + k)
                w.append(6.0)
                h.append(0.0)
                up.append([])
                down.append([])
                chain.append(d)
        chain.append(b)
        for u, v in zip(chain, chain[1:], strict=False):
            if layer[v] == layer[u] + 1:
                down[u].append(v)
                up[v].append(u)
        chains.append(chain)
    total = len(layer)
    nlayers = max(layer, default=-1) + 1
    layers: list[list[int]] = [[] for _ in range(nlayers)]
    for v in range(total):  # units in IR order, dummies after their edge's source
        layers[layer[v]].append(v)
    pos = [0.0] * total
    for row in layers:
        for i, v in enumerate(row):
            pos[v] = float(i)
    for _ in range(SWEEPS):
        for rows, nbrs in ((layers[1:], up), (layers[-2::-1], down)):
            for row in rows:
                bary = {}
                for v in row:
                    ns = nbrs[v]
                    bary[v] = sum(pos[u] for u in ns) / len(ns) if ns else pos[v]
                row.sort(key=_nested_keys(row, bary, group).__getitem__)
                for i, v in enumerate(row):
                    pos[v] = float(i)
    x = [0.0] * total
    for row in layers:  # packed left to right to start
        cx = 0.0
        for v in row:
            x[v] = cx + w[v] / 2
            cx += w[v] + NODE_SEP
    for p in range(PLACE_PASSES):
        rows, nbrs = (layers[1:], up) if p % 2 == 0 else (layers[-2::-1], down)
        for row in rows:
            want = []
            for v in row:  # the neighbours' mean x, a long edge's bends counting little
                ns = nbrs[v]
                wsum = sum(1.0 if u < n else DUMMY_WEIGHT for u in ns)
                xsum = sum(x[u] * (1.0 if u < n else DUMMY_WEIGHT) for u in ns)
                want.append(xsum / wsum if ns else x[v])
            weight = [1.0 if v < n else DUMMY_WEIGHT for v in row]
            for v, cx in zip(row, _place(want, [w[v] for v in row], weight), strict=True):
                x[v] = cx
    if frames:
        _separate_groups(x, w, layer, group, layers)
    left = min((x[v] - w[v] / 2 for v in range(total)), default=0.0)
    x = [xv - left + 20.0 for xv in x]
    above, below = [0] * nlayers, [0] * nlayers
    if frames:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for v in range(n):
            for g in frames[v]:
                first[g] = min(first.get(g, layer[v]), layer[v])
                last[g] = max(last.get(g, layer[v]), layer[v])
        for v in range(n):
            a = sum(1 for g in frames[v] if first[g] == layer[v])
            b = sum(1 for g in frames[v] if last[g] == layer[v])
            above[layer[v]] = max(above[layer[v]], a)
            below[layer[v]] = max(below[layer[v]], b)
    ys: list[float] = []
    cy = 20.0
    for k, row in enumerate(layers):
        hh = max((h[v] for v in row), default=0.0)
        cy += above[k] * FRAME_TOP
        ys.append(cy + hh / 2)
        cy += hh + RANK_SEP + below[k] * FRAME_SIDE
    y = [ys[layer[v]] for v in range(total)]
    width = max((x[v] + w[v] / 2 for v in range(total)), default=0.0) + 20.0
    routes = []
    for (a, b), chain in zip(edges, chains, strict=True):
        pts = [(x[v], y[v]) for v in chain]
        pts[0] = (pts[0][0], pts[0][1] + h[chain[0]] / 2)
        pts[-1] = (pts[-1][0], pts[-1][1] - h[chain[-1]] / 2)
        routes.append(pts if a < b else pts[::-1])
    return Layout(x[:n], y[:n], width, cy, routes)


def _separate_groups(x: list[float], w: list[float], layer: list[int],
                     group: list[tuple[str, ...]], layers: list[list[int]]) -> None:
    """Sibling groups side by side (an encoder beside a decoder) get frames that do not
    overlap: inner groups first, each sibling (left to right) moves right of the siblings
    before it whose layers it shares (the last SEPARATE_CAP of them); then every layer is
    pushed apart again where a move closed a gap."""
    members: dict[str, list[int]] = {}
    parent: dict[str, str | None] = {}
    for v, chain in enumerate(group):
        for i, g in enumerate(chain):
            members.setdefault(g, []).append(v)
            parent[g] = chain[i - 1] if i else None
    depth = {g: len(_chain_of(g, parent)) for g in members}
    height = {g: max(len(group[v]) for v in ms) - depth[g] + 1 for g, ms in members.items()}
    kids: dict[str | None, list[str]] = {}
    for g in members:
        kids.setdefault(parent[g], []).append(g)
    for p in sorted(kids, key=lambda q: -1 if q is None else depth[q], reverse=True):
        boxes: list[tuple[float, float, int, int, str]] = []
        for g in kids[p]:
            ms = members[g]
            boxes.append((min(x[v] - w[v] / 2 for v in ms), max(x[v] + w[v] / 2 for v in ms),
                          min(layer[v] for v in ms), max(layer[v] for v in ms), g))  # fmt: skip
        boxes.sort(key=lambda b: (b[0], b[4]))
        placed: list[tuple[float, float, int, int, str]] = []
        for x0, x1, lo, hi, g in boxes:
            shift = 0.0
            for _px0, px1, plo, phi, pg in placed[-SEPARATE_CAP:]:
                if plo <= hi and lo <= phi:
                    gap = NODE_SEP + FRAME_SIDE * (height[pg] + height[g])
                    shift = max(shift, px1 + gap - x0)
            if shift > 0:
                for v in members[g]:
                    x[v] += shift
            placed.append((x0 + shift, x1 + shift, lo, hi, g))
    for row in layers:
        for u, v in zip(row, row[1:], strict=False):
            least = x[u] + (w[u] + w[v]) / 2 + NODE_SEP
            if x[v] < least:
                x[v] = least


def _chain_of(g: str, parent: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    p: str | None = g
    while p is not None:
        out.append(p)
        p = parent[p]
    return out


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return a[:k]


def _nested_keys(row: list[int], bary: dict[int, float],
                 group: list[tuple[str, ...]]) -> dict[int, list[tuple[float, str]]]:
    """Sort keys that keep each group's members side by side in a layer (so frames do not
    overlap): a group sorts by its members' mean barycenter, among its siblings, and so on
    down to the vertex's own barycenter."""
    sums: dict[tuple[str, ...], list[float]] = {}
    for v in row:
        c = group[v]
        for i in range(1, len(c) + 1):
            s = sums.setdefault(c[:i], [0.0, 0.0])
            s[0] += bary[v]
            s[1] += 1.0
    keys = {}
    for v in row:
        c = group[v]
        key = []
        for i in range(1, len(c) + 1):
            s = sums[c[:i]]
            key.append((s[0] / s[1], c[i - 1]))
        key.append((bary[v], "\uffff"))  # at a tie, after the groups (and stable)
        keys[v] = key
    return keys


def _place(want: list[float], widths: list[float], weight: list[float]) -> list[float]:
    """Centres as close as can be (weighted least squares) to `want`, in order, without
    overlap: subtract each vertex's offset in a tight packing, make the rest non-decreasing
    by pool-adjacent-violators, add the offsets back."""
    offs, o = [], 0.0
    for i, wd in enumerate(widths):
        if i:
            o += widths[i - 1] / 2 + NODE_SEP + wd / 2
        offs.append(o)
    blocks: list[list[float]] = []  # [mean, count]
    for t, off, wt in zip(want, offs, weight, strict=True):
        blocks.append([t - off, wt, 1.0])  # [mean, weight, count]
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks[-1]
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2]
    out: list[float] = []
    for m, _, c in blocks:
        out.extend([m] * int(c))
    return [b + off for b, off in zip(out, offs, strict=True)]
