"""The SVG drawing of one view, laid out in Python (layout.py): no system binary needed.

Each unit is a `<g class="unit">` with a `<title>` (its row of `dlc summary`, which a
browser shows on hover); open groups are dashed frames around their members; edges carry
the shape of the value they carry, and the edges into an add (residual) or a concat are
drawn in their own colours."""

from __future__ import annotations

from xml.sax.saxutils import escape

from .layout import FRAME_SIDE, FRAME_TOP, Layout, layered_layout
from .view import View

QUOTE = {'"': "&quot;"}  # for attribute values
CHAR_W = 6.8  # px per character of the 11px monospace font
LINE_H = 15.0
FILL = {"input": "#dff3e3", "output": "#dde9f7", "node": "#ffffff", "group": "#fff4d6"}
EDGE = {"data": "#555555", "residual": "#d9480f", "concat": "#7048e8", "tied": "#74c0fc"}
STYLE = """
text { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, monospace; font-size: 11px;
  fill: #222; }
.unit rect { stroke: #666; stroke-width: 1; }
.unit.group rect { stroke: #b08800; stroke-width: 1.6; }
.frame rect { fill: #f8f9fa; fill-opacity: 0.5; stroke: #adb5bd; stroke-dasharray: 5 3; }
.frame text { fill: #868e96; }
.edge path { fill: none; stroke-width: 1.2; }
.edge.tied path { stroke-dasharray: 4 3; }
.edge text { font-size: 9.5px; fill: #495057; }
"""


Frame = tuple[str, str, float, float, float, float]


def unit_size(lines: tuple[str, ...]) -> tuple[float, float]:
    return (max(len(s) for s in lines) * CHAR_W + 18.0, len(lines) * LINE_H + 10.0)


def path_d(pts: list[tuple[float, float]]) -> str:
    """A smooth path through the points: vertical tangents at each one."""
    (x0, y0), out = pts[0], []
    out.append(f"M{x0:.1f},{y0:.1f}")
    for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
        my = (ya + yb) / 2
        out.append(f"C{xa:.1f},{my:.1f} {xb:.1f},{my:.1f} {xb:.1f},{yb:.1f}")
    return "".join(out)


def frames(view: View, lay: Layout, sizes: list[tuple[float, float]]) -> list[Frame]:
    """Open groups' boxes (path, label, x0, y0, x1, y1), outermost first. Inner frames are
    boxed first, so each frame holds its members and its open children's frames, with room
    above for its label (layout.py leaves that room between the layers)."""
    box: dict[str, list[float]] = {}

    def grow(g: str, r: list[float]) -> None:
        b = box.setdefault(g, list(r))
        b[0], b[1] = min(b[0], r[0]), min(b[1], r[1])
        b[2], b[3] = max(b[2], r[2]), max(b[3], r[3])

    for i, u in enumerate(view.units):
        if u.parent is not None:
            w, h = sizes[i]
            grow(u.parent, [lay.x[i] - w / 2, lay.y[i] - h / 2, lay.x[i] + w / 2, lay.y[i] + h / 2])
    depth: dict[str, int] = {}
    for p in view.open_groups:
        d, g = 0, view.open_groups[p][1]
        while g is not None:
            d, g = d + 1, view.open_groups[g][1]
        depth[p] = d
    out: list[Frame] = []
    for p in sorted(view.open_groups, key=lambda q: -depth[q]):  # inner ones first
        if p not in box:
            continue
        x0, y0, x1, y1 = box[p]
        frame = [x0 - FRAME_SIDE, y0 - FRAME_TOP + 2, x1 + FRAME_SIDE, y1 + FRAME_SIDE]
        out.append((p, view.open_groups[p][0], frame[0], frame[1], frame[2], frame[3]))
        parent = view.open_groups[p][1]
        if parent is not None:
            grow(parent, frame)
    return out[::-1]


def frame_chains(view: View) -> list[tuple[str, ...]]:
    """Per unit, its open groups, outermost first."""
    out = []
    for u in view.units:
        chain, g = [], u.parent
        while g is not None:
            chain.append(g)
            g = view.open_groups[g][1]
        out.append(tuple(chain[::-1]))
    return out


def render_svg(view: View) -> str:
    sizes = [unit_size(u.lines) for u in view.units]
    lay = layered_layout(sizes, [(a, b) for a, b, _, _ in view.edges], frame_chains(view))
    fr = frames(view, lay, sizes)
    left = min([0.0] + [f[2] - 4 for f in fr])
    top = min([0.0] + [f[3] - 4 for f in fr])
    width = max([lay.width] + [f[4] + 20 for f in fr]) - left
    height = max([lay.height] + [f[5] + 20 for f in fr]) - top
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}">',
        f"<style>{STYLE}</style>",
        "<defs>"
        + "".join(
            f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="{c}"/></marker>'
            for k, c in EDGE.items()
        )
        + "</defs>",
        f'<rect x="{left:.0f}" y="{top:.0f}" width="{width:.0f}" height="{height:.0f}" '
        'fill="#ffffff"/>',
    ]
    for path, label, x0, y0, x1, y1 in fr:
        out.append(
            f'<g class="frame" data-group="{escape(path, QUOTE)}"><rect x="{x0:.1f}" y="{y0:.1f}" '
            f'width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="6"/>'
            f'<text x="{x0 + 6:.1f}" y="{y0 + 13:.1f}" font-weight="bold">'
            f"▾ {escape(label)}</text></g>"
        )
    labelled: set[tuple[int, str]] = set()
    for (a, _b, shape, kind), pts in zip(view.edges, lay.routes, strict=True):
        out.append(f'<g class="edge {kind}"><path d="{path_d(pts)}" stroke="{EDGE[kind]}" '
                   f'marker-end="url(#arrow-{kind})"/>')  # fmt: skip
        if (a, shape) not in labelled:  # a unit's output shape, once beside it
            labelled.add((a, shape))
            (xa, ya), (xb, yb) = pts[0], pts[1]
            # a third of the way down the first leg (t = 0.3 on its curve): clear of the
            # frame borders below, and apart from the label of an edge that joins this one
            t = 0.3
            s = 3 * t * t - 2 * t**3
            mx = xa + (xb - xa) * s
            tx = mx + 4 if xb >= xa else mx - 4 - len(shape) * 5.8
            ty = ya + (yb - ya) * (s + 1.5 * t * (1 - t)) + 3
            out.append(f'<text x="{tx:.1f}" y="{ty:.1f}">{escape(shape)}</text>')
        out.append("</g>")
    for i, u in enumerate(view.units):
        w, h = sizes[i]
        x0, y0 = lay.x[i] - w / 2, lay.y[i] - h / 2
        rx = 12 if u.kind in ("input", "output") else 4
        out.append(
            f'<g class="unit {u.kind}" data-id="{escape(u.id, QUOTE)}">'
            f"<title>{escape(u.row)}</title>"
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
            f'fill="{FILL[u.kind]}"/>'
        )
        for k, line in enumerate(u.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(f'<text x="{x0 + 9:.1f}" y="{y0 + 5 + LINE_H * (k + 0.75):.1f}"{weight}>'
                       f"{escape(line)}</text>")  # fmt: skip
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
