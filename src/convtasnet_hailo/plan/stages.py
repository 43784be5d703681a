"""Hailo-format stages: small fixed-shape op graphs on NCHW tensors with H=1.

A :class:`Stage` lists its inputs (with the halo geometry each needs), its outputs and its ops
(``plan.ops``). No reshapes or transposes: those are host steps (``plan.host_steps``). The only
reductions are per tile (``TileMean``, with ``--gln-in-stages``), whose outputs are one value per
tile and channel.
"""

from __future__ import annotations

import dataclasses
import enum

from .ops import Op


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How a stage input maps to its output frames along time (W axis).

    Output frame ``t`` reads input samples ``t*stride - pad_left ... t*stride - pad_left + span - 1``;
    indices outside the stored tensor are the reference's zero padding.
    """

    stride: int = 1
    span: int = 1
    pad_left: int = 0
    pad_right: int = 0

    def output_length(self, input_length: int) -> int:
        """Frames the reference produces from ``input_length`` input frames (0 if too short)."""
        padded = input_length + self.pad_left + self.pad_right
        return max(0, (padded - self.span) // self.stride + 1)

    def tile_input_width(self, tile_w: int) -> int:
        """Input width a tile of ``tile_w`` output frames needs, halo included."""
        return (tile_w - 1) * self.stride + self.span

    def tile_input_start(self, first_frame: int) -> int:
        """First input index read by a tile whose first output frame is ``first_frame``."""
        return first_frame * self.stride - self.pad_left

    @property
    def halo(self) -> tuple[int, int]:
        """Extra input frames beyond a 1:1 mapping, left and right (stride-1 geometries)."""
        return self.pad_left, self.span - 1 - self.pad_left


POINTWISE = Geometry()


class InputKind(str, enum.Enum):
    """What a stage input carries per batch entry (one tile of one group)."""

    TILES = "tiles"  # the tile's window of a tensor: (C, 1, geometry.tile_input_width(tile_w))
    LEFT_EDGE = "left_edge"  # the halo before the tile: (C, 1, geometry.pad_left) (stride 1)
    RIGHT_EDGE = "right_edge"  # the halo after it: (C, 1, geometry.pad_right)
    PER_TILE = "per_tile"  # one value per channel, the same over the tile: (C, 1, 1)
    VALID_MASK = "valid_mask"  # (1, 1, width): 1 where the window lies inside the utterance, else 0


@dataclasses.dataclass(frozen=True)
class StageInput:
    """A stage input port. ``source``: the stored tensor it is cut from when that is not ``name``
    (a tile's edges are cut from the tensor the tile is). ``edges_from``: for an edge, the per-tile
    edge output of the producing stage it is assembled from when that is wide enough
    (``StageOutput.edge``; otherwise it is cut from ``source``)."""

    name: str
    channels: int
    geometry: Geometry = POINTWISE
    kind: InputKind = InputKind.TILES
    source: str | None = None
    edges_from: str | None = None

    @property
    def tensor(self) -> str:
        return self.source or self.name

    def window(self, tile_w: int) -> tuple[int, int]:
        """(frames before the tile's first frame where the input starts, input width); stride 1
        for the edges."""
        if self.kind is InputKind.LEFT_EDGE:
            return self.geometry.pad_left, self.geometry.pad_left
        if self.kind is InputKind.RIGHT_EDGE:
            return -tile_w, self.geometry.pad_right
        return self.geometry.pad_left, self.width(tile_w)

    def width(self, tile_w: int) -> int:
        if self.kind is InputKind.PER_TILE:
            return 1
        if self.kind in (InputKind.LEFT_EDGE, InputKind.RIGHT_EDGE):
            return self.window(tile_w)[1]
        return self.geometry.tile_input_width(tile_w)


@dataclasses.dataclass(frozen=True)
class StageOutput:
    """A stage output: (batch, C, 1, tile_w); with ``per_tile`` one value per tile and channel
    (batch, C, 1, 1); with ``edge`` = n, each tile's first or last n frames (``TileEdge``; the whole
    tile when it is narrower), (batch, C, 1, min(n, tile_w))."""

    name: str
    channels: int
    per_tile: bool = False
    edge: int | None = None

    def width(self, tile_w: int) -> int:
        if self.edge is not None:
            return min(self.edge, tile_w)
        return 1 if self.per_tile else tile_w


@dataclasses.dataclass(frozen=True)
class ChannelBlock:
    """Where a channel-block stage comes from: output block ``out_block`` of conv ``conv_output``
    in stage ``parent``, computed from input block ``in_block`` (channel ranges are [lo, hi))."""

    parent: str
    conv_output: str
    out_block: int
    in_block: int
    out_channels: tuple[int, int]
    in_channels: tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class Stage:
    """One fixed-shape unit of work the backends run on a batch of tiles.

    Inputs arrive as (batch, C, 1, width) with the width their kind gives (``StageInput.width``);
    outputs are (batch, C, 1, tile_w), or (batch, C, 1, 1) per tile. ``role`` says in words what the
    stage computes.
    """

    name: str
    inputs: tuple[StageInput, ...]
    outputs: tuple[StageOutput, ...]
    ops: tuple[Op, ...]
    role: str = ""
    block: ChannelBlock | None = None

    @property
    def reads(self) -> tuple[str, ...]:
        """Stored tensors the stage reads (a valid mask is made by the executor, not stored)."""
        names = [p.tensor for p in self.inputs if p.kind is not InputKind.VALID_MASK]
        return tuple(dict.fromkeys(names + [p.edges_from for p in self.inputs if p.edges_from]))

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.outputs)

    def input_shapes(self, tile_w: int, batch: int = 1) -> dict[str, tuple[int, int, int, int]]:
        return {p.name: (batch, p.channels, 1, p.width(tile_w)) for p in self.inputs}

    def output_shapes(self, tile_w: int, batch: int = 1) -> dict[str, tuple[int, int, int, int]]:
        return {p.name: (batch, p.channels, 1, p.width(tile_w)) for p in self.outputs}

    def value_channels(self) -> dict[str, int]:
        """Channel count of every value the stage reads or makes."""
        channels = {p.name: p.channels for p in self.inputs}
        for op in self.ops:
            channels[op.output] = op.out_channels(channels)
        return channels

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates per output frame."""
        channels = self.value_channels()
        return sum(op.macs_per_frame(channels) for op in self.ops)

    @property
    def weight_count(self) -> int:
        """Parameters the stage keeps on the device (weight bytes = count x bits / 8)."""
        return sum(op.weight_count() for op in self.ops)

    def structure(self) -> tuple:
        """What the allocator sees of a stage: ops and shapes, not weights."""
        return (
            tuple(op.structure() for op in self.ops),
            tuple((p.channels, p.geometry, p.kind) for p in self.inputs),
            tuple((p.channels, p.per_tile, p.edge) for p in self.outputs),
        )
