"""Stage ports bound to a compiled network's streams by name, and the shapes HailoRT gives them.

A HEF names its streams after the parsed layers (inputs ``<net>/input_layerN``, outputs after the
layer that writes them) and lists outputs in the DFC's sorted order, not the ONNX order
(hailort ``hef/core_op_metadata.cpp``, "Sort vstream infos by sorted_output_names"). What ties a
stream to a port is the ONNX names the stream's layer holds: HailoRT answers them per stream
(``HEF.get_original_names_from_vstream_name``, pyhailort.py; ``hef/hef.cpp``), the SDK's HN per
layer (``original_names``). Each port's ONNX name is ``plan.onnx_names.port_original_names``.
Binding never uses a list position: several ports of a fused stage share a shape (the residual
stream and the skip, ``expose_internal`` outputs), and swapped they would give wrong audio silently.

``VStreamInfo.shape`` is ``(H, W, C)`` for NHWC, ``(H, W)`` for NHW and ``(C,)`` for NC
(``bindings/python/src/pyhailort.cpp``); frames go in and come out in that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import UserError


class StreamBindingError(UserError):
    """A port of a stage that maps to no stream of its compiled network, or to several, or a
    stream two ports map to: the HEF was not compiled from this stage's export."""


def bind_ports(
    where: str, kind: str, wanted: Mapping[str, str], streams: Mapping[str, tuple[str, ...]]
) -> dict[str, str]:
    """Port -> stream name. ``wanted``: port -> its ONNX name; ``streams``: stream -> the ONNX
    names it holds; ``where``: "stage S (network N of F.hef)" for the message."""
    found_names = "; ".join(f"{name} {list(originals)}" for name, originals in streams.items()) or "none"
    fix = "recompile this export with `convtasnet-hailo compile`"
    bound: dict[str, str] = {}
    for port, original in wanted.items():
        found = [name for name, originals in streams.items() if original in originals]
        if len(found) != 1:
            streams_found = f"{len(found)} streams {', '.join(found)}" if found else "no stream"
            raise StreamBindingError(
                f"{where}: {kind} port {port} (ONNX name {original}) maps to {streams_found} "
                f"({kind} streams and their original names: {found_names}); {fix}"
            )
        bound[port] = found[0]
    claimed = {stream: [p for p, s in bound.items() if s == stream] for stream in bound.values()}
    shared = next((ports for ports in claimed.values() if len(ports) > 1), None)
    if shared:
        raise StreamBindingError(
            f"{where}: {kind} ports {', '.join(shared)} all map to stream {bound[shared[0]]} "
            f"({kind} streams and their original names: {found_names}); {fix}"
        )
    unbound = [name for name in streams if name not in claimed]
    if unbound:
        raise StreamBindingError(
            f"{where}: {kind} stream {unbound[0]} (original names {list(streams[unbound[0]])}) "
            f"belongs to no port of the stage (ports: {', '.join(wanted)}); {fix}"
        )
    return bound


def format_order(info: Any) -> str:
    """The stream's format order name (``info.format.order``); NHWC where the binding says none."""
    order = getattr(getattr(info, "format", None), "order", None)
    return str(getattr(order, "name", order or "NHWC"))


def reported_shape(order: str, nhwc: tuple[int, int, int]) -> tuple[int, ...]:
    """The shape HailoRT reports for a frame of NHWC shape ``nhwc`` in ``order`` (pyhailort.cpp)."""
    h, w, c = nhwc
    if order == "NC":
        return (c,) if h == w == 1 else ()
    if order == "NHW":
        return (h, w) if c == 1 else ()
    return (h, w, c)


def frame_nhwc(info: Any) -> tuple[int, int, int]:
    """A stream's frame as (H, W, C) from the shape HailoRT reports for its order."""
    shape = tuple(int(d) for d in info.shape)
    order = format_order(info)
    if order == "NC" and len(shape) == 1:
        return 1, 1, shape[0]
    if order == "NHW" and len(shape) == 2:
        return shape[0], shape[1], 1
    return shape  # type: ignore[return-value]


def to_stream(tiles_nhwc: np.ndarray, info: Any) -> np.ndarray:
    """(N, H, W, C) tiles -> (N, *info.shape), the frames the stream takes (same memory order)."""
    return np.ascontiguousarray(tiles_nhwc).reshape(len(tiles_nhwc), *tuple(info.shape))


def from_stream(frames: np.ndarray, info: Any) -> np.ndarray:
    """(N, *info.shape) frames -> (N, H, W, C)."""
    return np.asarray(frames).reshape(len(frames), *frame_nhwc(info))
