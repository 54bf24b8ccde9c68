"""dlc's runtime: what runs a checked spec, on top of the compiler (never the reverse).

The commands of cli.py: compile.py (ONNX and model.py, verified), predict.py, weights.py,
api.py (the Python API); train/ (`dlc train`) and serve/ (`dlc serve`); files.py holds
the helpers they share (atomic writes).
"""
