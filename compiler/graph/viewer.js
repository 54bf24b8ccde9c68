// dlc graph's page: the view (which units show for the open groups), the layered layout
// (the same steps as compiler/graph/layout.py), the SVG, pan, zoom, click to open or close
// a group, hover for a node's row of `dlc summary`. No network access, no library.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("dlc-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const CHAR_W = 6.8, LINE_H = 15, NODE_SEP = 28, RANK_SEP = 50, MAX_SPAN = 40;
  const FRAME_TOP = 20, FRAME_SIDE = 6, DUMMY_WEIGHT = 0.05, SEPARATE_CAP = 50;
  const FILL = {input: "#dff3e3", output: "#dde9f7", node: "#ffffff", group: "#fff4d6"};
  const EDGE = {data: "#555555", residual: "#d9480f", concat: "#7048e8", tied: "#74c0fc"};
  const groups = new Map(D.groups.map(g => [g[0], {path: g[0], label: g[1], parent: g[2],
    leaves: g[3], params: g[4], ins: g[5], outs: g[6], row: g[7]}]));
  const open = new Set(D.expanded);
  const num = n => n.toLocaleString("en-US");

  function makeView() {
    const units = [], index = new Map(), rep = new Map();
    for (const [id, kind, title, , gs, shape, params, row] of D.leaves) {
      let key = id, parent = null;
      for (const g of gs) { if (!open.has(g)) { key = "g:" + g; break; } parent = g; }
      if (!index.has(key)) {
        index.set(key, units.length);
        if (key.startsWith("g:")) {
          const g = groups.get(key.slice(2));
          units.push({id: key, kind: "group", parent, row: g.row, lines: ["▸ " + g.label,
            (g.leaves + " nodes  " + (g.params ? num(g.params) + " params" : "")).trim(),
            (g.ins.join(", ") || "-") + " → " + (g.outs.join(", ") || "-")]});
        } else {
          const lines = kind === "node" ? [title].concat(params ? [num(params) + " params"] : [])
            : [title, shape];
          units.push({id: key, kind, parent, row, lines});
        }
      }
      rep.set(id, index.get(key));
    }
    const seen = new Set(), edges = [];
    for (const [s, d, shape, kind] of D.edges) {
      const a = rep.get(s), b = rep.get(d), k = a + "," + b;
      if (a !== b && !seen.has(k)) { seen.add(k); edges.push([a, b, shape, kind]); }
    }
    return {units, edges};
  }

  function place(want, widths, weight) {  // weighted least squares under the gaps: PAV
    const offs = []; let o = 0;
    widths.forEach((w, i) => { if (i) o += widths[i - 1] / 2 + NODE_SEP + w / 2; offs.push(o); });
    const blocks = [];
    want.forEach((t, i) => {
      blocks.push([t - offs[i], weight[i], 1]);
      while (blocks.length > 1 && blocks[blocks.length - 2][0] > blocks[blocks.length - 1][0]) {
        const [m2, w2, c2] = blocks.pop(), [m1, w1, c1] = blocks[blocks.length - 1];
        blocks[blocks.length - 1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2];
      }
    });
    const out = [];
    for (const [m, , c] of blocks) for (let k = 0; k < c; k++) out.push(m);
    return out.map((b, i) => b + offs[i]);
  }

  // as layout.py's _nested_keys: a group's members stay side by side in a layer
  function nestedKeys(row, bary, group) {
    const sums = new Map();
    for (const v of row) {
      const c = group[v];
      for (let i = 1; i <= c.length; i++) {
        const k = c.slice(0, i).join("\u0001"), s = sums.get(k) || [0, 0];
        s[0] += bary.get(v); s[1] += 1; sums.set(k, s);
      }
    }
    const keys = new Map();
    for (const v of row) {
      const c = group[v], key = [];
      for (let i = 1; i <= c.length; i++) { const s = sums.get(c.slice(0, i).join("\u0001")); key.push([s[0] / s[1], c[i - 1]]); }
      key.push([bary.get(v), "\uffff"]);
      keys.set(v, key);
    }
    return keys;
  }

  function compareKeys(a, b) {  // Python's order of lists of (float, str) tuples
    for (let i = 0; i < a.length && i < b.length; i++) {
      if (a[i][0] !== b[i][0]) return a[i][0] < b[i][0] ? -1 : 1;
      if (a[i][1] !== b[i][1]) return a[i][1] < b[i][1] ? -1 : 1;
    }
    return a.length - b.length;
  }

  // as layout.py's _separate_groups: sibling groups' frames kept apart, then layers pushed apart
  function separateGroups(x, w, layer, group, layers) {
    const members = new Map(), parent = new Map();
    group.forEach((chain, v) => chain.forEach((g, i) => {
      if (!members.has(g)) members.set(g, []);
      members.get(g).push(v); parent.set(g, i ? chain[i - 1] : null);
    }));
    const depth = new Map(), height = new Map(), kids = new Map();
    for (const g of members.keys()) { let d = 0; for (let p = g; p !== null; p = parent.get(p)) d++; depth.set(g, d); }
    for (const [g, ms] of members) {
      height.set(g, ms.reduce((m, v) => Math.max(m, group[v].length), 0) - depth.get(g) + 1);
      const p = parent.get(g);
      if (!kids.has(p)) kids.set(p, []);
      kids.get(p).push(g);
    }
    const parents = [...kids.keys()].sort((a, b) => (b === null ? -1 : depth.get(b)) - (a === null ? -1 : depth.get(a)));
    for (const p of parents) {
      const boxes = kids.get(p).map(g => {
        const ms = members.get(g);
        let x0 = Infinity, x1 = -Infinity, lo = Infinity, hi = -Infinity;
        for (const v of ms) { x0 = Math.min(x0, x[v] - w[v] / 2); x1 = Math.max(x1, x[v] + w[v] / 2); lo = Math.min(lo, layer[v]); hi = Math.max(hi, layer[v]); }
        return [x0, x1, lo, hi, g];
      });
      boxes.sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[4] < b[4] ? -1 : a[4] > b[4] ? 1 : 0));
      const placed = [];
      for (const [x0, x1, lo, hi, g] of boxes) {
        let shift = 0;
        for (const [, px1, plo, phi, pg] of placed.slice(-SEPARATE_CAP)) {
          if (plo <= hi && lo <= phi) {
            const gap = NODE_SEP + FRAME_SIDE * (height.get(pg) + height.get(g));
            shift = Math.max(shift, px1 + gap - x0);
          }
        }
        if (shift > 0) for (const v of members.get(g)) x[v] += shift;
        placed.push([x0 + shift, x1 + shift, lo, hi, g]);
      }
    }
    for (const row of layers) {
      for (let i = 0; i + 1 < row.length; i++) {
        const u = row[i], v = row[i + 1], least = x[u] + (w[u] + w[v]) / 2 + NODE_SEP;
        if (x[v] < least) x[v] = least;
      }
    }
  }

  function layout(sizes, edges, frames) {  // frames: per unit, its open groups, outermost first
    const n = sizes.length, layer = new Array(n).fill(0);
    const fwd = edges.map(([a, b]) => (a < b ? [a, b] : [b, a]));
    const preds = Array.from({length: n}, () => []);
    for (const [a, b] of fwd) preds[b].push(a);
    for (let v = 0; v < n; v++) for (const p of preds[v]) layer[v] = Math.max(layer[v], layer[p] + 1);
    const w = sizes.map(s => s[0]), h = sizes.map(s => s[1]);
    const up = Array.from({length: n}, () => []), down = Array.from({length: n}, () => []);
    const chains = [], group = frames.slice();
    for (const [a, b] of fwd) {
      const chain = [a], span = layer[b] - layer[a];
      if (span > 1 && span <= MAX_SPAN) {
        const common = [];  // a bend stays in the groups of both ends
        for (let k = 0; k < group[a].length && k < group[b].length && group[a][k] === group[b][k]; k++) common.push(group[a][k]);
        for (let k = 1; k < span; k++) {
          const d = layer.length;
          group.push(common);
          layer.push(layer[a] + k); w.push(6); h.push(0); up.push([]); down.push([]);
          chain.push(d);
        }
      }
      chain.push(b);
      for (let i = 0; i + 1 < chain.length; i++) {
        const u = chain[i], v = chain[i + 1];
        if (layer[v] === layer[u] + 1) { down[u].push(v); up[v].push(u); }
      }
      chains.push(chain);
    }
    const total = layer.length, nl = layer.reduce((m, l) => Math.max(m, l), -1) + 1;  // no spread: 100k args overflow
    const layers = Array.from({length: nl}, () => []);
    for (let v = 0; v < total; v++) layers[layer[v]].push(v);
    const pos = new Array(total).fill(0);
    for (const row of layers) row.forEach((v, i) => { pos[v] = i; });
    const mean = (ns, arr, dflt) => (ns.length ? ns.reduce((s, u) => s + arr[u], 0) / ns.length : dflt);
    for (let s = 0; s < 4; s++) {
      for (const [rows, nb] of [[layers.slice(1), up], [layers.slice(0, -1).reverse(), down]]) {
        for (const row of rows) {
          const bary = new Map(row.map(v => [v, mean(nb[v], pos, pos[v])]));
          const key = nestedKeys(row, bary, group);
          row.sort((p, q) => compareKeys(key.get(p), key.get(q)));
          row.forEach((v, i) => { pos[v] = i; });
        }
      }
    }
    const x = new Array(total).fill(0);
    for (const row of layers) { let cx = 0; for (const v of row) { x[v] = cx + w[v] / 2; cx += w[v] + NODE_SEP; } }
    for (let p = 0; p < 4; p++) {
      const [rows, nb] = p % 2 === 0 ? [layers.slice(1), up] : [layers.slice(0, -1).reverse(), down];
      for (const row of rows) {
        const wmean = v => { let ws = 0, xs = 0; for (const u of nb[v]) { const k = u < n ? 1 : DUMMY_WEIGHT; ws += k; xs += k * x[u]; } return ws ? xs / ws : x[v]; };
        const got = place(row.map(wmean), row.map(v => w[v]), row.map(v => (v < n ? 1 : DUMMY_WEIGHT)));
        row.forEach((v, i) => { x[v] = got[i]; });
      }
    }
    if (frames.some(c => c.length)) separateGroups(x, w, layer, group, layers);
    let left = Infinity;
    for (let v = 0; v < total; v++) left = Math.min(left, x[v] - w[v] / 2);
    for (let v = 0; v < total; v++) x[v] += 20 - (left === Infinity ? 0 : left);
    const above = new Array(nl).fill(0), below = new Array(nl).fill(0), first = new Map(), last = new Map();
    for (let v = 0; v < n; v++) for (const g of frames[v]) {
      first.set(g, Math.min(first.has(g) ? first.get(g) : layer[v], layer[v]));
      last.set(g, Math.max(last.has(g) ? last.get(g) : layer[v], layer[v]));
    }
    for (let v = 0; v < n; v++) {
      above[layer[v]] = Math.max(above[layer[v]], frames[v].filter(g => first.get(g) === layer[v]).length);
      below[layer[v]] = Math.max(below[layer[v]], frames[v].filter(g => last.get(g) === layer[v]).length);
    }
    const ys = []; let cy = 20;
    layers.forEach((row, k) => {
      const hh = Math.max(0, ...row.map(v => h[v]));
      cy += above[k] * FRAME_TOP; ys.push(cy + hh / 2); cy += hh + RANK_SEP + below[k] * FRAME_SIDE;
    });
    const y = layer.map(l => ys[l]);
    const routes = chains.map((chain, i) => {
      const pts = chain.map(v => [x[v], y[v]]);
      pts[0] = [pts[0][0], pts[0][1] + h[chain[0]] / 2];
      pts[pts.length - 1] = [pts[pts.length - 1][0], pts[pts.length - 1][1] - h[chain[chain.length - 1]] / 2];
      return edges[i][0] < edges[i][1] ? pts : pts.reverse();
    });
    return {x, y, routes};
  }

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function pathD(pts) {
    let d = "M" + pts[0][0] + "," + pts[0][1];
    for (let i = 0; i + 1 < pts.length; i++) {
      const [xa, ya] = pts[i], [xb, yb] = pts[i + 1], my = (ya + yb) / 2;
      d += "C" + xa + "," + my + " " + xb + "," + my + " " + xb + "," + yb;
    }
    return d;
  }

  const svg = document.getElementById("dlc-svg"), tip = document.getElementById("dlc-tip");
  const root = el("g", {id: "dlc-root"}, svg);
  let tx = 0, ty = 0, scale = 1;
  const apply = () => root.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);

  function depthOf(p) { let d = 0; for (let g = groups.get(p).parent; g; g = groups.get(g).parent) d++; return d; }

  function draw() {
    while (root.firstChild) root.removeChild(root.firstChild);
    tip.style.display = "none";  // the unit under the pointer is gone, and its mouseleave with it
    const v = makeView();
    const sizes = v.units.map(u => [Math.max(...u.lines.map(s => s.length)) * CHAR_W + 18, u.lines.length * LINE_H + 10]);
    const chains = v.units.map(u => { const c = []; for (let g = u.parent; g; g = groups.get(g).parent) c.unshift(g); return c; });
    const lay = layout(sizes, v.edges, chains);
    const box = new Map();
    const grow = (g, r) => { const b = box.get(g) || r.slice();
      box.set(g, [Math.min(b[0], r[0]), Math.min(b[1], r[1]), Math.max(b[2], r[2]), Math.max(b[3], r[3])]); };
    v.units.forEach((u, i) => {
      if (u.parent) grow(u.parent, [lay.x[i] - sizes[i][0] / 2, lay.y[i] - sizes[i][1] / 2, lay.x[i] + sizes[i][0] / 2, lay.y[i] + sizes[i][1] / 2]);
    });
    const frames = [];
    for (const p of [...open].sort((a, b) => depthOf(b) - depthOf(a))) {  // inner ones first
      if (!box.has(p)) continue;
      const [x0, y0, x1, y1] = box.get(p), fr = [x0 - FRAME_SIDE, y0 - FRAME_TOP + 2, x1 + FRAME_SIDE, y1 + FRAME_SIDE];
      frames.push([p, fr]);
      if (groups.get(p).parent) grow(groups.get(p).parent, fr);
    }
    for (const [p, [x0, y0, x1, y1]] of frames.reverse()) {
      const f = el("g", {class: "frame", "data-group": p}, root);
      el("rect", {x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 6}, f);
      const t = el("text", {x: x0 + 6, y: y0 + 13, "font-weight": "bold"}, f, "▾ " + groups.get(p).label);
      t.addEventListener("click", ev => { ev.stopPropagation(); closeGroup(p); });
    }
    const labelled = new Set();
    v.edges.forEach(([a, , shape, kind], i) => {
      const pts = lay.routes[i], g = el("g", {class: "edge " + kind}, root);
      el("path", {d: pathD(pts), stroke: EDGE[kind], "marker-end": `url(#arrow-${kind})`}, g);
      if (!labelled.has(a + shape)) {
        labelled.add(a + shape);
        const t = 0.3, s = 3 * t * t - 2 * t ** 3;  // as svg.py: a third of the way down
        const mx = pts[0][0] + (pts[1][0] - pts[0][0]) * s;
        const x = pts[1][0] >= pts[0][0] ? mx + 4 : mx - 4 - shape.length * 5.8;
        el("text", {x, y: pts[0][1] + (pts[1][1] - pts[0][1]) * (s + 1.5 * t * (1 - t)) + 3}, g, shape);
      }
    });
    v.units.forEach((u, i) => {
      const [w, h] = sizes[i], x0 = lay.x[i] - w / 2, y0 = lay.y[i] - h / 2;
      const g = el("g", {class: "unit " + u.kind, "data-id": u.id}, root);
      el("rect", {x: x0, y: y0, width: w, height: h, rx: u.kind === "input" || u.kind === "output" ? 12 : 4, fill: FILL[u.kind]}, g);
      u.lines.forEach((line, k) => el("text", {x: x0 + 9, y: y0 + 5 + LINE_H * (k + 0.75), "font-weight": k ? "normal" : "bold"}, g, line));
      g.addEventListener("mousemove", ev => {
        tip.textContent = u.row; tip.style.display = "block";
        const right = ev.clientX + 14 + tip.offsetWidth > window.innerWidth;  // keep it in view
        tip.style.left = (right ? Math.max(0, ev.clientX - 14 - tip.offsetWidth) : ev.clientX + 14) + "px";
        tip.style.top = ev.clientY + 14 + "px";
      });
      g.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      if (u.kind === "group") g.addEventListener("click", ev => { ev.stopPropagation(); open.add(u.id.slice(2)); draw(); });
    });
    document.getElementById("dlc-state").textContent = `${v.units.length} units, ${open.size} open groups`;
  }

  function closeGroup(p) {
    for (const g of [...open]) if (g === p || g.startsWith(p + ".")) open.delete(g);
    draw();
  }

  function fit(whole) {  // the whole drawing; or, to start, its top at a readable scale
    const b = root.getBBox(), W = svg.clientWidth, H = svg.clientHeight;
    scale = Math.min(whole ? 1.5 : 1, W / (b.width + 40), whole ? H / (b.height + 40) : Infinity);
    if (!isFinite(scale) || scale <= 0) scale = 1;
    tx = (W - b.width * scale) / 2 - b.x * scale; ty = 20 - b.y * scale; apply();
  }

  let drag = null;
  svg.addEventListener("mousedown", ev => { drag = [ev.clientX - tx, ev.clientY - ty]; });
  window.addEventListener("mousemove", ev => { if (drag) { tx = ev.clientX - drag[0]; ty = ev.clientY - drag[1]; apply(); } });
  window.addEventListener("mouseup", () => { drag = null; });
  svg.addEventListener("wheel", ev => {
    ev.preventDefault();
    const k = Math.exp(-ev.deltaY * 0.0015), r = svg.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    tx = mx - (mx - tx) * k; ty = my - (my - ty) * k; scale *= k; apply();
  }, {passive: false});
  document.getElementById("dlc-fit").addEventListener("click", () => fit(true));
  document.getElementById("dlc-expand").addEventListener("click", () => { for (const p of groups.keys()) open.add(p); draw(); fit(false); });
  document.getElementById("dlc-collapse").addEventListener("click", () => { open.clear(); draw(); fit(false); });
  draw(); fit(false);
  window.dlcGraph = {open, draw, fit, groups};
})();
