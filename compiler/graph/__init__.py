"""`dlc graph`: the architecture drawn from the checked IR, with no tracing and no torch.

    Graph --model.py--> groups (name prefixes) and leaves --view.py--> the units of one
    expansion state --layout.py--> coordinates --svg.py | text.py | page.py--> a file

Four formats: `.svg` (laid out here, no system binary), `.html` (one self-contained page:
the same layout in inline JavaScript, redone when a group is opened or closed), `.dot`
(Graphviz, groups as clusters) and `.mmd` (a Mermaid flowchart, groups as subgraphs).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..ir import Graph
from .model import Model, build_model
from .page import render_html
from .svg import render_svg
from .text import render_dot, render_mermaid
from .view import make_view

FORMATS = (".svg", ".html", ".dot", ".mmd")


def graph_format(path: str) -> str:
    """The format of an output path, by its extension; a UsageError for another one."""
    suffix = Path(path).suffix.lower()
    if suffix == ".htm":
        suffix = ".html"
    if suffix not in FORMATS:
        what = "no extension names a format"
        if suffix:
            what = f"dlc graph cannot write a '{suffix}' file"
        raise UsageError(
            f"-o {path}: {what}",
            hint="name the output .svg, .html, .dot (Graphviz) or .mmd (Mermaid)",
        )
    return suffix


def render_graph(graph: Graph, fmt: str, expand: list[str] | None = None) -> str:
    """The drawing of `graph` in format `fmt` (one of FORMATS) with the groups named in
    `expand` open (`["all"]`: every group); by default the spec's top level shows."""
    model: Model = build_model(graph)
    expanded = model.resolve(list(expand or ()))
    if fmt == ".html":
        return render_html(model, expanded)
    view = make_view(model, expanded)
    if fmt == ".svg":
        return render_svg(view)
    if fmt == ".dot":
        return render_dot(view, graph.name)
    if fmt == ".mmd":
        return render_mermaid(view)
    raise AssertionError(f"unknown format {fmt}")


__all__ = ["FORMATS", "graph_format", "render_graph"]
