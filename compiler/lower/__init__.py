"""Lowerings of the typed IR: initial weights (numpy), a torch.fx module, an ONNX graph.

`init` has no heavy imports; `torch` imports torch and `onnx` imports onnx, so the front
end (check, summary) never loads them.
"""
