"""`dlc summary`: a table of nodes with output shapes, parameter counts and FLOPs.

FLOPs are per example: the batch dim (the first dim of each input, when symbolic) is set
to 1; other symbolic dims (T, H, W) stay in the formula. Parameters count trainable
weights, as `sum(p.numel() for p in module.parameters())` does; buffers (running
statistics, fitted constants) are counted apart.
"""

from __future__ import annotations

from typing import Any

from .dims import Dim, format_dim, free_symbols, is_sym, substitute
from .ir import Graph


def batch_symbols(graph: Graph) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in graph.inputs:
        if i.type.shape and is_sym(i.type.shape[0]):
            out.update((s, 1) for s in free_symbols(i.type.shape[0]))
    return out


def _json_dim(d: Dim) -> int | str:
    return d if isinstance(d, int) else format_dim(d)


def summary_json(graph: Graph) -> dict[str, Any]:
    """Everything `dlc summary` shows, for machines (`--json`)."""
    per_example = batch_symbols(graph)
    rows: list[dict[str, Any]] = [
        {"node": i.name, "op": "input", "shape": str(i.type), "params": 0, "buffers": 0, "flops": 0}
        for i in graph.inputs
    ]
    total_flops: Dim = 0
    for n in graph.nodes:
        flops = substitute(n.flops, per_example)
        total_flops = total_flops + flops
        rows.append({
            "node": n.name,
            "op": n.op,
            "shape": str(n.type),
            "params": n.num_params,
            "buffers": sum(p.size for p in n.params if not p.trainable),
            "flops": _json_dim(flops),
        })  # fmt: skip
    types = graph.types()
    return {
        "name": graph.name,
        "inputs": {i.name: str(i.type) for i in graph.inputs},
        "outputs": {name: str(types[v]) for name, v in graph.outputs},
        "nodes": rows,
        "total_params": graph.num_params,
        "total_buffers": sum(r["buffers"] for r in rows),
        "total_flops": _json_dim(total_flops),
        "flops_per": "example",
    }


def _num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def summary_table(graph: Graph) -> str:
    data = summary_json(graph)
    header = ("node", "op", "output shape", "params", "FLOPs")
    body = [
        (r["node"], r["op"], r["shape"], _num(r["params"]), _num(r["flops"])) for r in data["nodes"]
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in pairs]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    out = [f"model {graph.name}", rule, line(header), rule, *map(line, body), rule]
    outs = ", ".join(f"{k} {v}" for k, v in data["outputs"].items())
    out.append(f"outputs: {outs}")
    out.append(
        f"parameters: {_num(data['total_params'])}"
        + (f"  (+ {_num(data['total_buffers'])} in buffers)" if data["total_buffers"] else "")
    )
    out.append(f"FLOPs per example: {_num(data['total_flops'])}")
    return "\n".join(out)
