"""`dlc summary`: a table of nodes with output shapes, parameter counts and FLOPs.

FLOPs are per example: the batch dim (the first dim of each input, when symbolic) is set
to 1; other symbolic dims (T, H, W) stay in the formula. Parameters count trainable
weights, as `sum(p.numel() for p in module.parameters())` does; buffers (running
statistics, fitted constants) are counted apart.
"""

from __future__ import annotations

from typing import Any

from .dims import Dim, format_dim, is_sym, substitute
from .ir import Graph


def batch_symbols(graph: Graph) -> dict[str, int]:
    out = {}
    for i in graph.inputs:
        if i.type.shape and is_sym(i.type.shape[0]):
            out.update((s, 1) for s in _free(i.type.shape[0]))
    return out


def _free(d: Dim) -> frozenset[str]:
    from .dims import free_symbols

    return free_symbols(d)


def summary_rows(graph: Graph) -> list[dict[str, Any]]:
    per_example = batch_symbols(graph)
    rows = []
    for i in graph.inputs:
        rows.append(
            {
                "node": i.name,
                "op": "input",
                "shape": str(i.type),
                "params": 0,
                "buffers": 0,
                "flops": 0,
            }
        )
    for n in graph.nodes:
        flops = substitute(n.flops, per_example) if is_sym(n.flops) else n.flops
        rows.append(
            {
                "node": n.name,
                "op": n.op,
                "shape": str(n.type),
                "params": n.num_params,
                "buffers": sum(p.size for p in n.params if not p.trainable),
                "flops": flops if isinstance(flops, int) else format_dim(flops),
            }
        )
    return rows


def summary_json(graph: Graph) -> dict[str, Any]:
    rows = summary_rows(graph)
    total_flops: Dim = 0
    per_example = batch_symbols(graph)
    for n in graph.nodes:
        total_flops = total_flops + (
            substitute(n.flops, per_example) if is_sym(n.flops) else n.flops
        )
    return {
        "name": graph.name,
        "inputs": {i.name: str(i.type) for i in graph.inputs},
        "outputs": {name: str(graph.types()[v]) for name, v in graph.outputs},
        "nodes": rows,
        "total_params": graph.num_params,
        "total_buffers": sum(r["buffers"] for r in rows),
        "total_flops": total_flops if isinstance(total_flops, int) else format_dim(total_flops),
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
