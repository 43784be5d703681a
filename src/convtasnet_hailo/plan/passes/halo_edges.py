"""``--halo-edges``: a stage with a halo reads its tile and its neighbours' edges, not a window.

By default the executor cuts, for every tile of a depthwise stage, a window of tile_w + halo
frames: a copy of the whole tensor, and more (twice it at tile_w 256 and dilation 128). With this
option such a stage reads the tile itself (the producing stage's output batch, no copy), the
``pad_left`` frames before it and the ``pad_right`` frames after it (``LEFT_EDGE`` /
``RIGHT_EDGE`` inputs, zeros outside the utterance), and joins them in its first op (``Concat`` on
the time axis). The stage that makes the tensor also outputs each tile's last ``pad_left`` and
first ``pad_right`` frames (``TileEdge``, while the tile is in its cache), and the executor only
shifts those by one tile; where a halo is wider than a tile it cuts the edges from the tiles
instead (reading them back cold from memory costs several times the copy itself:
docs/benchmarks.md, "Host path decisions").

Applied to the finished (fused) plan: only single stages read with a halo. For the float backends
only, as ``--gln-in-stages`` (``builder.refuse_float_only``): the device gains nothing from it
(the same frames cross the link) and its Concat on the time axis is unconfirmed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..ops import Concat, TileEdge
from ..stages import POINTWISE, InputKind, Stage, StageInput, StageOutput


def halo_edges_into_stages(steps: Sequence) -> list:
    """The plan's steps with every stride-1 halo input split into tile and edges, and the edges
    output by the stage that makes the tensor (module docstring)."""
    steps = [_with_edges(step) if isinstance(step, Stage) else step for step in steps]
    producer = {name: k for k, step in enumerate(steps) if isinstance(step, Stage) for name in step.writes}
    for index in range(len(steps)):
        step = steps[index]
        if not isinstance(step, Stage):
            continue
        ports = []
        for port in step.inputs:
            if port.kind in (InputKind.LEFT_EDGE, InputKind.RIGHT_EDGE) and port.tensor in producer:
                side, frames = (
                    ("tail", port.geometry.pad_left)
                    if port.kind is InputKind.LEFT_EDGE
                    else ("head", port.geometry.pad_right)
                )
                k = producer[port.tensor]
                steps[k], name = _with_edge_output(steps[k], port.tensor, side, frames)
                port = dataclasses.replace(port, edges_from=name)
            ports.append(port)
        steps[index] = dataclasses.replace(step, inputs=tuple(ports))
    return steps


def _with_edge_output(stage: Stage, tensor: str, side: str, frames: int) -> tuple[Stage, str]:
    """``stage`` also outputting each tile's ``side`` ``frames`` frames of ``tensor`` (once)."""
    name = f"{tensor}.{side}{frames}"
    if name in stage.writes:
        return stage, name
    channels = stage.value_channels()[tensor]
    return Stage(
        stage.name,
        stage.inputs,
        stage.outputs + (StageOutput(name, channels, edge=frames),),
        stage.ops + (TileEdge(tensor, name, side, frames),),
        role=stage.role + f"; {side} edge of {tensor}",
        block=stage.block,
    ), name


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
            parts.append(
                StageInput(f"{port.name}.right_edge", port.channels, geometry, InputKind.RIGHT_EDGE, port.name)
            )
        ports += parts
        rename[port.name] = f"{port.name}.window"
        joins.append(Concat(tuple(p.name for p in parts), rename[port.name]))
    if not rename:
        return stage
    return Stage(
        stage.name,
        tuple(ports),
        stage.outputs,
        tuple(joins) + tuple(op.renamed(rename) for op in stage.ops),
        role="tile and halo edges joined; " + stage.role,
        block=stage.block,
    )
