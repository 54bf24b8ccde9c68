"""`dlc serve`: ONNX models over the KServe v2 inference protocol.

Outside in: command.py (the process: socket, uvicorn, signals) -> app.py (the ASGI
application and its endpoints; openapi.py describes them) -> models.py (the onnxruntime
sessions) -> protocol.py (the wire format) -> batching.py (dynamic batching on a thread
pool); observe.py keeps the metrics and the access log.
"""
