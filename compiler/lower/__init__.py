"""Lowerings of the typed IR: initial weights (numpy), a torch.fx module, an ONNX graph.

`initial_weights` has no heavy imports; `torch` imports torch and `onnx` imports onnx,
so the front end (check, summary) never loads them. The op rules themselves live in
the families' folders (`ops/<family>/torch.py`, `onnx.py`).
"""
