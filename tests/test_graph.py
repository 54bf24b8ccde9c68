"""`dlc graph`: every spec drawn in every format, checked by what reads each format (an
XML parser for the SVG, a DOT grammar, Mermaid's statement forms, the page's own JSON),
the group counts, the errors, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import lark
import pytest

from conftest import ROOT, run_dlc
from dlc.compiler.graph import render_graph
from dlc.compiler.graph.model import build_model
from dlc.compiler.graph.view import make_view
from dlc.compiler.ir import Graph
from dlc.compiler.pipeline import check_file
from dlc.compiler.summary import summary_table

ALL_SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs/zoo").glob("*.yaml"))
SVG_NS = "{http://www.w3.org/2000/svg}"

# Graphviz's DOT language (graphviz.org/doc/info/lang.html), minus ports and HTML labels
DOT = lark.Lark(
    r"""
    start: ("strict")? ("digraph" | "graph") id? "{" stmts "}"
    stmts: (stmt ";"?)*
    ?stmt: node_stmt | edge_stmt | attr_stmt | id "=" id -> assign | subgraph
    attr_stmt: ("graph" | "node" | "edge") attrs
    attrs: ("[" (id "=" id (";" | ",")?)* "]")+
    node_stmt: id attrs?
    edge_stmt: (id | subgraph) (EDGEOP (id | subgraph))+ attrs?
    subgraph: ("subgraph" id?)? "{" stmts "}"
    id: CNAME | SIGNED_NUMBER | ESCAPED_STRING
    EDGEOP: "->" | "--"
    %import common (CNAME, SIGNED_NUMBER, ESCAPED_STRING, WS)
    %ignore WS
    """,
    parser="lalr",
)

# Each line of a flowchart as text.py writes it, in Mermaid's own statement forms
MMD_LABEL = r'"(?:[^"<>\[\]#|]|#\w+;|<br/>)*"'
MMD_LINE = [
    re.compile(rf"^\s*subgraph g\d+\[{MMD_LABEL}\]$"),
    re.compile(r"^\s*end$"),
    re.compile(rf"^\s*u\d+(\[{MMD_LABEL}\]|\(\[{MMD_LABEL}\]\))$"),
    re.compile(rf"^\s*u\d+ (-->|==>|-\.->)\|{MMD_LABEL}\| u\d+$"),
    re.compile(r"^\s*classDef \w+ [\w:#,\-]+$"),
    re.compile(r"^\s*class u\d+(,u\d+)* \w+$"),
]


def missing(reason: str) -> None:
    """A system tool a test needs is absent: a skip on a developer's machine, a failure in
    CI (`CI` set), where .ci/run installs it, so the test cannot pass there unrun."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs it")
    pytest.skip(reason)


@functools.cache
def graph_of(path: Path) -> Graph:
    return check_file(path).graph


def expected_units(graph: Graph, expand_all: bool) -> int:
    """Counted from the names alone: collapsed, one unit per top-level name."""
    ends = len(graph.inputs) + len(graph.outputs)
    if expand_all:
        return ends + len(graph.nodes)
    return ends + len({n.name.split(".")[0] for n in graph.nodes})


def check_mermaid(text: str) -> tuple[int, int]:
    """Structural check of a flowchart; (nodes, subgraphs)."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    depth, nodes, subgraphs, defined = 0, 0, 0, set()
    for line in lines[1:]:
        assert any(p.match(line) for p in MMD_LINE), f"not a flowchart statement: {line!r}"
        if line.strip().startswith("subgraph"):
            depth, subgraphs = depth + 1, subgraphs + 1
        elif line.strip() == "end":
            depth -= 1
            assert depth >= 0, "an `end` without its subgraph"
        elif m := re.match(r"^\s*(u\d+)[\[(]", line):
            defined.add(m.group(1))
            nodes += 1
        elif m := re.match(r"^\s*(u\d+) \S+\|.*\| (u\d+)$", line):
            assert {m.group(1), m.group(2)} <= defined, f"an edge to an undefined node: {line}"
    assert depth == 0, "a subgraph without its `end`"
    return nodes, subgraphs


def check_dot(text: str) -> tuple[int, int]:
    tree = DOT.parse(text)
    nodes = sum(1 for _ in tree.find_data("node_stmt"))
    clusters = sum(1 for _ in tree.find_data("subgraph"))
    return nodes, clusters


def urls_fetched(page: str) -> list[str]:
    """Every http(s) URL in the page but the SVG namespace name (an identifier, never
    fetched), and any element that loads from elsewhere."""
    urls = [u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if u != "http://www.w3.org/2000/svg"]
    loads = re.findall(r"<(?:script|link|img|iframe)[^>]*\s(?:src|href)=", page)
    return urls + loads + re.findall(r"@import|url\(\s*['\"]?(?!#)", page)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_every_spec_renders_in_every_format(spec: Path) -> None:
    graph = graph_of(spec)
    groups = build_model(graph).groups
    for expand in ([], ["all"]):
        units = expected_units(graph, bool(expand))
        opened = len(groups) if expand else 0
        svg = ET.fromstring(render_graph(graph, ".svg", expand))
        drawn = [g for g in svg.iter(SVG_NS + "g") if "unit" in g.get("class", "").split()]
        assert len(drawn) == units
        frames = [g for g in svg.iter(SVG_NS + "g") if g.get("class") == "frame"]
        assert len(frames) == opened
        assert check_dot(render_graph(graph, ".dot", expand)) == (units, opened)
        assert check_mermaid(render_graph(graph, ".mmd", expand)) == (units, opened)
        page = render_graph(graph, ".html", expand)
        assert urls_fetched(page) == []
        data = json.loads(re.search(r'id="dlc-data">(.*?)</script>', page, re.S).group(1))
        assert len(data["leaves"]) == len(graph.inputs) + len(graph.nodes) + len(graph.outputs)
        assert len(data["expanded"]) == opened


def test_resnet_small_groups() -> None:
    graph = graph_of(ROOT / "specs/resnet_small.yaml")
    model = build_model(graph)
    top = make_view(model, model.resolve([]))
    assert [u.lines[0] for u in top.units] == [
        "x", "▸ prep", "▸ stem", "▸ body", "▸ y", "probs = softmax", "logits",
    ]  # fmt: skip
    body = make_view(model, model.resolve(["body"]))
    groups = [u for u in body.units if u.kind == "group" and u.parent == "body"]
    assert [(u.lines[0], u.lines[1]) for u in groups] == [
        ("▸ basic × 2", "14 nodes  9,344 params"),
        ("▸ down", "9 nodes  14,528 params"),
        ("▸ basic × 2", "14 nodes  37,120 params"),
    ]
    assert groups[1].lines[2] == "[B, 16, 8, 8] → [B, 32, 4, 4]"
    # a path inside a merged chain names the same group; its parents open with it
    assert model.resolve(["body.repeat.0.basic"]) == {"body", "body.repeat", "body.repeat.0"}
    assert model.groups["body.repeat.0"].label == "basic #0"


def test_residual_concat_and_tied_edges_are_marked() -> None:
    def kinds(spec: str) -> list[str]:
        svg = ET.fromstring(render_graph(graph_of(ROOT / spec), ".svg", ["all"]))
        return [g.get("class", "") for g in svg.iter(SVG_NS + "g")]

    resnet = kinds("specs/resnet_small.yaml")
    # four basic blocks' residual_add read a skip connection; the down block adds two branches
    assert resnet.count("edge residual") == 4 + 2
    assert kinds("specs/graph_mlp.yaml").count("edge concat") >= 1
    assert kinds("specs/transformer_lm.yaml").count("edge tied") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{tmp}/m.png"], "-o {tmp}/m.png: dlc graph cannot write a '.png' file"),
        (["-o", "{tmp}/m"], "-o {tmp}/m: no extension names a format"),
        (["-o", "{tmp}/m.svg", "--expand", "bdy"],
         "--expand bdy: no group of that name in resnet_small (did you mean 'body'?)"),
    ],  # fmt: skip
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    result = run_dlc("graph", "specs/resnet_small.yaml", *args)
    assert result.returncode == 1
    assert f"error: {message.format(tmp=tmp_path)}" in result.stderr
    assert "hint:" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_spec_that_does_not_check_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("dlc: 1\nname: bad\ninputs: {x: [B, 4]}\nmodel:\n"
                    "  - dense(3) -> conv2d(8, 3)\n")  # fmt: skip
    result = run_dlc("graph", str(spec), "-o", str(tmp_path / "bad.svg"))
    assert result.returncode == 1
    assert re.search(rf"{re.escape(str(spec))}:5:\d+: error: ", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_writes_the_file_and_imports_no_torch(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "m.mmd"
    code = (
        "import sys\nfrom dlc.runtime.cli import main\n"
        f"assert main(['graph', 'specs/resnet_small.yaml', '-o', {str(out)!r}, "
        "'--expand', 'all']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert [p.name for p in out.parent.iterdir()] == ["m.mmd"]  # no temporary file left
    assert check_mermaid(out.read_text())[0] == expected_units(
        graph_of(ROOT / "specs/resnet_small.yaml"), True
    )


def _browser():  # noqa: ANN202
    """A headless Chromium driven by Selenium through Debian's chromedriver, or a skip."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if chromium is None or driver is None:
        missing("no chromium + chromedriver here (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager downloads nothing
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_html_in_headless_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = tmp_path / "resnet_small.html"
    assert run_dlc("graph", "specs/resnet_small.yaml", "-o", str(page)).returncode == 0
    browser = _browser()
    try:
        browser.get(page.as_uri())

        def unit(uid: str):  # noqa: ANN202
            return browser.find_element(By.CSS_SELECTOR, f'.unit[data-id="{uid}"]')

        def units() -> list[str]:
            found = browser.find_elements(By.CSS_SELECTOR, ".unit")
            return [e.get_attribute("data-id") for e in found]

        assert browser.find_element(By.ID, "dlc-state").text == "7 units, 0 open groups"
        assert "g:body.repeat" not in units()
        browser.save_screenshot(str(tmp_path / "before.png"))
        unit("g:body").click()
        assert not browser.find_element(By.ID, "dlc-tip").is_displayed()  # no stale tooltip
        opened = unit("g:body.repeat")
        assert opened.is_displayed() and opened.size["height"] > 0
        assert "basic × 2" in opened.text
        assert browser.find_element(By.CSS_SELECTOR, '.frame[data-group="body"]').is_displayed()
        # open down to a node: body.repeat, then its block #0, then the residual inside it
        for uid in ("g:body.repeat", "g:body.repeat.0", "g:body.repeat.0.basic.residual"):
            unit(uid).click()
        conv = unit("n:body.repeat.0.basic.residual.conv2d")
        assert conv.is_displayed() and conv.size["width"] > 0
        assert conv.text.startswith("conv2d(filters=16, kernel=3")
        ActionChains(browser).move_to_element(conv).perform()
        tip = browser.find_element(By.ID, "dlc-tip")
        assert tip.is_displayed()
        table = summary_table(graph_of(ROOT / "specs/resnet_small.yaml")).splitlines()
        row = next(r for r in table if r.startswith("body.repeat.0.basic.residual.conv2d "))
        assert tip.text.split() == row.split()  # its row of `dlc summary`
        browser.save_screenshot(str(tmp_path / "after.png"))
        before = (tmp_path / "before.png").read_bytes()
        after = (tmp_path / "after.png").read_bytes()
        assert before[:8] == after[:8] == b"\x89PNG\r\n\x1a\n" and before != after
        # closing body by its frame's label closes the groups inside it too
        browser.find_element(By.CSS_SELECTOR, '.frame[data-group="body"] text').click()
        assert len(units()) == 7
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()


@pytest.mark.parametrize(
    "spec", ["specs/resnet_small.yaml", "specs/zoo/unet.yaml", "specs/seq2seq_reverse.yaml"]
)
def test_the_page_lays_out_as_the_svg(tmp_path: Path, spec: str) -> None:
    """viewer.js runs layout.py's steps again: the same boxes, state by state."""
    from selenium.webdriver.common.by import By

    graph = graph_of(ROOT / spec)
    browser = _browser()
    try:
        for expand in ([], ["all"]):
            svg = ET.fromstring(render_graph(graph, ".svg", expand))
            want = {}
            for g in svg.iter(SVG_NS + "g"):
                if "unit" in g.get("class", "").split():
                    r = g.find(SVG_NS + "rect")
                    want[g.get("data-id")] = (float(r.get("x")), float(r.get("y")))
            page = tmp_path / "page.html"
            page.write_text(render_graph(graph, ".html", expand))
            browser.get(page.as_uri())
            got = {}
            for g in browser.find_elements(By.CSS_SELECTOR, ".unit"):
                r = g.find_element(By.TAG_NAME, "rect")
                got[g.get_attribute("data-id")] = (float(r.get_attribute("x")),
                                                   float(r.get_attribute("y")))  # fmt: skip
            assert got.keys() == want.keys()
            for uid, (x, y) in want.items():
                assert got[uid] == pytest.approx((x, y), abs=0.06), uid
    finally:
        browser.quit()


@pytest.mark.parametrize(
    ("spec", "path", "label"),
    [
        ("specs/zoo/resnet50.yaml", "layer1", "layer1 (layer)"),  # a node that calls a block
        ("specs/zoo/resnet50.yaml", "layer1.layer.repeat", "bottleneck × 2"),
        ("specs/zoo/resnet50.yaml", "layer1.layer.repeat.1", "bottleneck #1"),
        ("specs/zoo/mobilenet_v2.yaml", "features.stage.repeat", "inverted_res × 1"),
        ("specs/graph_mlp.yaml", "y.parallel", "parallel"),  # numbered branches, no repeat
        ("specs/graph_mlp.yaml", "y.parallel.1", "#1"),
    ],
)
def test_group_labels(spec: str, path: str, label: str) -> None:
    assert build_model(graph_of(ROOT / spec)).groups[path].label == label


@pytest.mark.parametrize("seed", range(20))
def test_layered_layout_invariants(seed: int) -> None:
    """Random graphs (long edges, fan-in, fan-out, an edge pointing back): edges run down,
    boxes in a layer never overlap, every route starts and ends at its boxes."""
    import random

    from dlc.compiler.graph.layout import NODE_SEP, layered_layout

    rng = random.Random(seed)
    n = rng.randint(1, 60)
    sizes = [(rng.uniform(20, 300), rng.choice([25.0, 40.0, 55.0])) for _ in range(n)]
    edges = sorted({(rng.randrange(i), i) for i in range(1, n) for _ in range(rng.randint(0, 3))})
    if n > 3:
        edges.append((n - 1, 1))  # collapsing can make one
    lay = layered_layout(sizes, edges)
    for (a, b), route in zip(edges, lay.routes, strict=True):
        top, bottom = (a, b) if a < b else (b, a)
        assert lay.y[bottom] > lay.y[top]
        down = 1 if a < b else -1  # a back edge leaves its source's top
        assert route[0] == pytest.approx((lay.x[a], lay.y[a] + down * sizes[a][1] / 2))
        assert route[-1] == pytest.approx((lay.x[b], lay.y[b] - down * sizes[b][1] / 2))
    by_layer: dict[float, list[int]] = {}
    for v in range(n):
        by_layer.setdefault(round(lay.y[v], 6), []).append(v)
    for row in by_layer.values():
        row.sort(key=lambda v: lay.x[v])
        for u, v in zip(row, row[1:], strict=False):
            gap = (lay.x[v] - sizes[v][0] / 2) - (lay.x[u] + sizes[u][0] / 2)
            assert gap >= NODE_SEP - 1e-6
    assert all(lay.x[v] - sizes[v][0] / 2 >= 0 for v in range(n))


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_frames_nest_and_never_overlap(spec: Path) -> None:
    """With every group open, two frames either nest or stay apart (an encoder and a
    decoder side by side, a block's two branches)."""
    svg = ET.fromstring(render_graph(graph_of(spec), ".svg", ["all"]))
    frames = []
    for g in svg.iter(SVG_NS + "g"):
        if g.get("class") == "frame":
            r = g.find(SVG_NS + "rect")
            x, y = float(r.get("x")), float(r.get("y"))
            frames.append((g.get("data-group"), x, y, x + float(r.get("width")),
                           y + float(r.get("height"))))  # fmt: skip
    for i, (p, ax0, ay0, ax1, ay1) in enumerate(frames):
        for q, bx0, by0, bx1, by1 in frames[i + 1 :]:
            if q.startswith(p + ".") or p.startswith(q + "."):
                continue
            apart = ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0
            assert apart, f"frames {p} and {q} overlap"


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_graphviz_reads_the_dot(spec: Path) -> None:
    """Where Graphviz is installed (it is no dependency), its `dot` lays the file out."""
    dot = shutil.which("dot")
    if dot is None:
        missing("no Graphviz `dot` here; the DOT grammar check above still ran")
    for expand in ([], ["all"]):
        text = render_graph(graph_of(spec), ".dot", expand)
        result = subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # no warning either
