"""The plan IR: a ConvTasNet decomposed into fixed-shape stages (ops: ``ops.py``) and the host
steps between them, with the tensor names every report uses. The single source of truth for
export, compile, tiling, every backend and parity."""
