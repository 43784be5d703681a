"""Layout helpers shared by the compile driver and the Hailo backends: NCHW <-> NHWC, and which
array feeds which input layer of a parsed network. Torch-free (the driver runs in the SDK's
own Python)."""

from __future__ import annotations

from typing import Any, Sequence


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
    """Arrays keyed by the parsed net's input layers. One input: the array itself. Several: each
    HN input layer is matched to its ONNX input by the layer's ``original_names`` (unconfirmed
    field name); when that does not match every input, the parser's input order (sorted layer
    names) is used."""
    if len(arrays) == 1:
        return arrays[0]
    layers = hn.get("layers", {})
    inputs = [name for name, layer in layers.items() if layer.get("type") == "input_layer"]

    def qualified(name: str) -> str:
        return name if "/" in name else f"{net_name}/{name}"

    feed = {}
    for name in inputs:
        originals = layers[name].get("original_names") or []
        for index, onnx_name in enumerate(onnx_input_names):
            if onnx_name in originals:
                feed[qualified(name)] = arrays[index]
    if len(feed) != len(arrays):
        feed = {qualified(n): a for n, a in zip(sorted(inputs), arrays)}
    return feed
