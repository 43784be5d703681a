"""Reading an ONNX file as untrusted input: its weights inside it, each readable.

``onnx.load`` by default follows an initializer's ``external_data`` location to another file (which
may lie outside the folder), and a weight cut short surfaces later as numpy's reshape error; both
are refused here in one line naming the file and the weight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


def load_self_contained(path: Path, where: str, fix: str):
    """The ``onnx.ModelProto`` in ``path``, never reading another file; ``where`` starts each
    message (e.g. "stage encoder: <path>"), ``fix`` ends it."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, OSError: a truncated or foreign file
        raise UserError(f"{where} is not a readable ONNX file ({type(exc).__name__}); {fix}") from None
    check_initializers(model, where, fix)
    return model


def check_initializers(model, where: str, fix: str) -> None:
    """Every initializer is stored in the file and holds as many values as its shape needs."""
    from onnx import numpy_helper
    from onnx.external_data_helper import uses_external_data

    for init in model.graph.initializer:
        if uses_external_data(init):
            raise UserError(
                f"{where}: initializer {init.name!r} is stored in an external file, which is not read; {fix}"
            )
        try:
            numpy_helper.to_array(init)
        except (ValueError, TypeError) as exc:
            needed = int(np.prod(init.dims)) if init.dims else 1
            raise UserError(
                f"{where}: initializer {init.name!r} of shape {tuple(init.dims)} ({needed} values) cannot be read "
                f"({str(exc).splitlines()[0][:80]}): the file was cut short or damaged; {fix}"
            ) from None
