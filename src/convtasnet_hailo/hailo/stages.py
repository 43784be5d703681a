"""Hailo-format stages: small fixed-shape op graphs on NCHW tensors with H=1.

A :class:`Stage` lists its inputs (with the halo geometry each needs), its outputs and its ops.
Only Hailo-friendly ops exist here: Conv2d with (1, K) kernels (plain, strided, depthwise,
dilated), PReLU, ReLU, Sigmoid, elementwise add and multiply. No reshapes, transposes or
reductions: those are host steps (``convtasnet_hailo.tiling.host_steps``).
"""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np


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


@dataclasses.dataclass(frozen=True)
class StageInput:
    name: str
    channels: int
    geometry: Geometry = POINTWISE


@dataclasses.dataclass(frozen=True)
class StageOutput:
    name: str
    channels: int


@dataclasses.dataclass(frozen=True, eq=False)
class Conv:
    """Conv2d on (batch, C, 1, W) with a (1, K) kernel, no padding.

    ``weight``: (C_out, C_in / groups, 1, K) float32; ``bias``: (C_out,) or None.
    """

    input: str
    output: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: int = 1
    dilation: int = 1
    groups: int = 1

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def kernel(self) -> int:
        return self.weight.shape[3]


@dataclasses.dataclass(frozen=True)
class PRelu:
    """PReLU with one shared slope (Asteroid uses single-parameter PReLU)."""

    input: str
    output: str
    slope: float


@dataclasses.dataclass(frozen=True)
class Relu:
    input: str
    output: str


@dataclasses.dataclass(frozen=True)
class Sigmoid:
    input: str
    output: str


@dataclasses.dataclass(frozen=True)
class Add:
    a: str
    b: str
    output: str


@dataclasses.dataclass(frozen=True)
class Mul:
    a: str
    b: str
    output: str


Op = Union[Conv, PRelu, Relu, Sigmoid, Add, Mul]


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

    Inputs arrive as (batch, C, 1, geometry.tile_input_width(tile_w)); every output is
    (batch, C, 1, tile_w). ``role`` says in words what the stage computes.
    """

    name: str
    inputs: tuple[StageInput, ...]
    outputs: tuple[StageOutput, ...]
    ops: tuple[Op, ...]
    role: str = ""
    block: ChannelBlock | None = None

    def input_shapes(self, tile_w: int, batch: int = 1) -> dict[str, tuple[int, int, int, int]]:
        return {p.name: (batch, p.channels, 1, p.geometry.tile_input_width(tile_w)) for p in self.inputs}

    def output_shapes(self, tile_w: int, batch: int = 1) -> dict[str, tuple[int, int, int, int]]:
        return {p.name: (batch, p.channels, 1, tile_w) for p in self.outputs}

    def value_channels(self) -> dict[str, int]:
        """Channel count of every value the stage reads or makes."""
        channels = {p.name: p.channels for p in self.inputs}
        for op in self.ops:
            if isinstance(op, Conv):
                channels[op.output] = op.out_channels
            elif isinstance(op, (Add, Mul)):
                channels[op.output] = channels[op.a]
            else:
                channels[op.output] = channels[op.input]
        return channels

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates per output frame (convs only)."""
        return sum(op.weight.size for op in self.ops if isinstance(op, Conv))


def conv1d_weight(weight: np.ndarray) -> np.ndarray:
    """Conv1d weight (C_out, C_in, K) -> Conv2d weight (C_out, C_in, 1, K), float32."""
    return np.ascontiguousarray(weight[:, :, None, :], dtype=np.float32)
