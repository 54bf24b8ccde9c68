"""The self-contained HTML page: the model as JSON and viewer.js inline, nothing fetched.
The page lays out each expansion state itself, so opening a group needs no round trip."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from .model import Model, as_json
from .svg import EDGE, STYLE

VIEWER = Path(__file__).with_name("viewer.js")

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; font: 13px system-ui, sans-serif; }}
#dlc-bar {{ position: fixed; top: 0; left: 0; right: 0; padding: 6px 10px; background: #f1f3f5;
  border-bottom: 1px solid #dee2e6; z-index: 2; }}
#dlc-bar button {{ margin-left: 6px; }}
#dlc-svg {{ position: fixed; top: 34px; left: 0; right: 0; bottom: 0; width: 100%;
  height: calc(100% - 34px); cursor: grab; background: #fff; }}
#dlc-tip {{ position: fixed; display: none; background: #212529; color: #f8f9fa; padding: 4px 8px;
  border-radius: 4px; font: 11px ui-monospace, monospace; white-space: pre; z-index: 3;
  pointer-events: none; }}
.unit.group {{ cursor: pointer; }}
.frame text {{ cursor: pointer; }}
{style}
</style></head>
<body>
<div id="dlc-bar"><b>{title}</b> <span id="dlc-state"></span>
  <button id="dlc-fit">fit</button><button id="dlc-expand">expand all</button>
  <button id="dlc-collapse">collapse all</button>
  <span style="color:#868e96">click a ▸ group to open it, its ▾ label to close it;
  drag to pan, wheel to zoom</span></div>
<svg id="dlc-svg" xmlns="http://www.w3.org/2000/svg"><defs>{markers}</defs></svg>
<div id="dlc-tip"></div>
<script type="application/json" id="dlc-data">{data}</script>
<script>{script}</script>
</body></html>
"""


def render_html(model: Model, expanded: set[str]) -> str:
    data = as_json(model)
    data["expanded"] = sorted(expanded)
    # no `<` in the script element's text, so nothing in a name can end it early
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    markers = "".join(
        f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="{c}"/></marker>'
        for k, c in EDGE.items()
    )
    return PAGE.format(title=escape(f"dlc graph: {model.name}"), style=STYLE, markers=markers,
                       data=text, script=VIEWER.read_text())  # fmt: skip
