"""Layout helpers shared by the compile driver and the Hailo backends: NCHW <-> NHWC, and which
array feeds which input layer of a parsed network. Torch-free (the driver runs in the SDK's
own Python)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def dfc_net_name(stage: str) -> str:
    """The DFC net name a stage is parsed under (letters, digits, underscores): the name of its
    network inside a joined HEF."""
    return "".join(c if c.isalnum() else "_" for c in stage)


def nchw_to_nhwc(tiles):
    """(N, C, 1, W) -> (N, 1, W, C), float32, contiguous: the layout of HEFs and calibration data."""
    import numpy as np

    return np.ascontiguousarray(tiles.transpose(0, 2, 3, 1), dtype=np.float32)


def nhwc_to_nchw(tiles):
    """(N, 1, W, C) -> (N, C, 1, W)."""
    import numpy as np

    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2))


def input_layer_feed(hn: dict, net_name: str, onnx_input_names: Sequence[str], arrays: Sequence[Any]):
    """Arrays keyed by the parsed net's input layers (``net/input_layerN``). One input: the array
    itself. Several: each ONNX input goes to the one HN input layer whose ``original_names`` hold
    its name (the HN field the Model Zoo's ``hn_editor`` edits), never by position; an input no
    layer holds, or two hold, is a ValueError naming it."""
    if len(arrays) == 1:
        return arrays[0]
    layers = hn.get("layers", {})
    inputs = {
        name: layer.get("original_names") or [] for name, layer in layers.items() if layer.get("type") == "input_layer"
    }
    feed = {}
    for onnx_name, array in zip(onnx_input_names, arrays, strict=False):
        holders = [name for name, originals in inputs.items() if onnx_name in originals]
        if len(holders) != 1:
            found = ", ".join(f"{n} {o}" for n, o in inputs.items()) or "none"
            raise ValueError(
                f"net {net_name}: ONNX input {onnx_name} is held by {len(holders)} input layers "
                f"(input layers and their original names: {found})"
            )
        feed[holders[0] if "/" in holders[0] else f"{net_name}/{holders[0]}"] = array
    return feed
