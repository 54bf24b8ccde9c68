"""The two text formats: Graphviz `.dot` (open groups as clusters) and a Mermaid flowchart
`.mmd` (open groups as subgraphs), which code review sites render. Both draw the same view
as the SVG; their renderers lay it out."""

from __future__ import annotations

from .view import View

DOT_FILL = {"input": "#dff3e3", "output": "#dde9f7", "node": "#ffffff", "group": "#fff4d6"}
DOT_EDGE = {"data": "#555555", "residual": "#d9480f", "concat": "#7048e8", "tied": "#74c0fc"}


def _dq(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _children(view: View) -> tuple[dict[str | None, list[int]], dict[str | None, list[str]]]:
    units: dict[str | None, list[int]] = {}
    for i, u in enumerate(view.units):
        units.setdefault(u.parent, []).append(i)
    groups: dict[str | None, list[str]] = {}
    for p, (_, parent) in view.open_groups.items():
        groups.setdefault(parent, []).append(p)
    return units, groups


def render_dot(view: View, name: str) -> str:
    units, groups = _children(view)
    out = [f"digraph {_dq(name)} {{", "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']  # fmt: skip

    def body(parent: str | None, indent: str) -> None:
        for k, p in enumerate(groups.get(parent, [])):
            out.append(f"{indent}subgraph {_dq('cluster_' + p)} {{")
            out.append(f'{indent}  label={_dq(view.open_groups[p][0])}; style="dashed";')
            body(p, indent + "  ")
            out.append(f"{indent}}}")
            del k
        for i in units.get(parent, []):
            u = view.units[i]
            out.append(f"{indent}u{i} [label={_dq(chr(10).join(u.lines))}, "
                       f"tooltip={_dq(u.row)}, fillcolor={_dq(DOT_FILL[u.kind])}"
                       + (", penwidth=2" if u.kind == "group" else "") + "];")  # fmt: skip

    body(None, "  ")
    for a, b, shape, kind in view.edges:
        style = ", style=dashed" if kind == "tied" else ""
        out.append(f"  u{a} -> u{b} [label={_dq(shape)}, color={_dq(DOT_EDGE[kind])}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mq(text: str) -> str:
    """A Mermaid quoted label: entity codes for what its parser would read as syntax."""
    for ch, code in (("#", "#35;"), ('"', "#quot;"), ("[", "#91;"), ("]", "#93;"),
                     ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):  # fmt: skip
        text = text.replace(ch, code)
    return '"' + text + '"'


def render_mermaid(view: View) -> str:
    units, groups = _children(view)
    gid = {p: f"g{k}" for k, p in enumerate(view.open_groups)}
    out = ["flowchart TB"]

    def body(parent: str | None, indent: str) -> None:
        for p in groups.get(parent, []):
            out.append(f"{indent}subgraph {gid[p]}[{_mq(view.open_groups[p][0])}]")
            body(p, indent + "  ")
            out.append(f"{indent}end")
        for i in units.get(parent, []):
            u = view.units[i]
            label = _mq("\n".join(u.lines)).replace("\n", "<br/>")
            shape = f"([{label}])" if u.kind in ("input", "output") else f"[{label}]"
            out.append(f"{indent}u{i}{shape}")

    body(None, "  ")
    for a, b, shape, kind in view.edges:
        arrow = {"data": "-->", "tied": "-.->"}.get(kind, "==>")
        out.append(f"  u{a} {arrow}|{_mq(shape)}| u{b}")
    out.append("  classDef group fill:#fff4d6,stroke:#b08800,stroke-width:2px")
    out.append("  classDef input fill:#dff3e3")
    out.append("  classDef output fill:#dde9f7")
    for kind in ("group", "input", "output"):
        ids = [f"u{i}" for i, u in enumerate(view.units) if u.kind == kind]
        if ids:
            out.append(f"  class {','.join(ids)} {kind}")
    return "\n".join(out) + "\n"
