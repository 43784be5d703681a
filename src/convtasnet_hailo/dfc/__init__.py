"""Compiling exported stages with the Hailo Dataflow Compiler (ONNX -> HAR -> HEF).

Importable without torch or onnxruntime: the worker (``worker.py``) runs inside the SDK's own
Python 3.10-3.12 environment and imports only this package, ``errors`` and ``export.manifest``.
"""
