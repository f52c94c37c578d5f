"""Serving cost: a built Keras model exported through Keras's own exporters and timed, one
synchronous batch at a time, in the runtime a deployment would load it into (ONNX Runtime,
LiteRT, OpenVINO), after its outputs have been checked against Keras's.

Needs the ``serve`` extra (``pip install "castbench[serve]"``). Nothing here is imported until
a serving runtime or an export is asked for.
"""
