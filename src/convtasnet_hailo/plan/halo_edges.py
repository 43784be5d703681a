"""``--halo-edges``: a stage with a halo reads its tile and its neighbours' edges, not a window.

By default the executor cuts, for every tile of a depthwise stage, a window of tile_w + halo
frames: a copy of the whole tensor, and more (twice it at tile_w 256 and dilation 128). With this
option such a stage reads the tile itself (the producing stage's output batch, no copy), the
``pad_left`` frames before it and the ``pad_right`` frames after it (``LEFT_EDGE`` /
``RIGHT_EDGE`` inputs cut by the executor, zeros outside the utterance), and joins them in its
first op (``Concat`` on the time axis). The host copies only the edges; the join is the stage's.

Applied to the finished (fused) plan: only single stages read with a halo. For the float backends
only, as ``--gln-in-stages`` (``builder.refuse_float_only``): the device gains nothing from it
(the same frames cross the link) and its Concat on the time axis is unconfirmed.
"""

from __future__ import annotations

from typing import Sequence

from .ops import Concat
from .stages import POINTWISE, InputKind, Stage, StageInput


def halo_edges_into_stages(steps: Sequence) -> list:
    """The plan's steps with every stride-1 halo input split into tile and edges (module docstring)."""
    return [_with_edges(step) if isinstance(step, Stage) else step for step in steps]


def _with_edges(stage: Stage) -> Stage:
    ports: list[StageInput] = []
    joins: list[Concat] = []
    rename: dict[str, str] = {}
    for port in stage.inputs:
        geometry = port.geometry
        if port.kind is not InputKind.TILES or geometry.stride != 1 or geometry.halo == (0, 0):
            ports.append(port)
            continue
        parts = []
        if geometry.pad_left:
            parts.append(StageInput(f"{port.name}.left_edge", port.channels, geometry, InputKind.LEFT_EDGE, port.name))
        parts.append(StageInput(port.name, port.channels, POINTWISE))
        if geometry.pad_right:
            parts.append(StageInput(f"{port.name}.right_edge", port.channels, geometry, InputKind.RIGHT_EDGE,
                                    port.name))
        ports += parts
        rename[port.name] = f"{port.name}.window"
        joins.append(Concat(tuple(p.name for p in parts), rename[port.name]))
    if not rename:
        return stage
    return Stage(stage.name, tuple(ports), stage.outputs, tuple(joins) + tuple(op.renamed(rename) for op in stage.ops),
                 role="tile and halo edges joined; " + stage.role, block=stage.block)
