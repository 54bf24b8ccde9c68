"""Decoding sequences from trained language models and encoder-decoders (`dlc generate`).

request.py holds a request and the checks the CLI and the server share; decode.py the
strategies (greedy, sampling with temperature, top-k and top-p, beam search) over a
`Stepper`; model.py the onnxruntime side (what a model's signature says, the steppers
with and without the key-value cache); cache.py a run's cached decoder
(decoder_cached.onnx, from compiler/lower/onnx_cached.py); command.py the command line.
"""
