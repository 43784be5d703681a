"""Tensors in tile layout and the gathers and scatters between layouts (the stitched executor's
storage): ``TiledTensor`` (a stage's output as the backend returned it), ``PerChannelAffine`` (a
pending gLN affine of one), tile windows with their halo, per-tile and valid-mask inputs, and the
reused window buffers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import UserError
from ..plan import host_math
from ..plan.stages import POINTWISE, Geometry

#: Widest tile the executor accepts; wider tiles make no sense for a fixed-shape NPU stage.
MAX_TILE_W = 1 << 16


def check_tile_width(tile_w: int) -> int:
    if not isinstance(tile_w, int) or isinstance(tile_w, bool) or not 1 <= tile_w <= MAX_TILE_W:
        raise UserError(f"tile width {tile_w!r} is not served by the plan: use an integer in 1..{MAX_TILE_W}")
    return tile_w


@dataclasses.dataclass(frozen=True, eq=False)
class TiledTensor:
    """A stage output as the backend returned it: ``tiles`` (G * n_tiles, C, 1, tile_w), group-major,
    frame ``f`` of group g in tile ``g * n_tiles + f // tile_w``. Columns past ``length`` in the
    last tile are zero (``from_backend``). ``shape`` is the whole tensor's, (G, C, length)."""

    tiles: np.ndarray
    groups: int
    length: int

    @classmethod
    def from_backend(cls, tiles: np.ndarray, groups: int, length: int) -> TiledTensor:
        tiled = cls(np.ascontiguousarray(tiles, dtype=np.float32), groups, length)
        tail = tiled.n_tiles * tiled.tile_w - length
        if tail:  # what the backend computed past the utterance: not part of the tensor
            tiled.grouped()[:, -1, :, :, -tail:] = 0
        return tiled

    @property
    def tile_w(self) -> int:
        return self.tiles.shape[-1]

    @property
    def n_tiles(self) -> int:
        return self.tiles.shape[0] // self.groups

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.groups, self.tiles.shape[1], self.length)

    @property
    def dtype(self) -> np.dtype:
        return self.tiles.dtype

    def grouped(self) -> np.ndarray:
        """A view (G, n_tiles, C, 1, tile_w)."""
        return self.tiles.reshape(self.groups, self.n_tiles, *self.tiles.shape[1:])

    def materialize(self) -> np.ndarray:
        """The whole tensor (G, C, length), one copy."""
        return scatter_tiles(self.tiles, self.groups, self.length)

    def pieces(self, lo: int, hi: int):
        """Frames lo:hi (inside 0..length) as (offset from lo, view (G, C, width)) per tile crossed."""
        tile_w = self.tile_w
        grouped = self.grouped()
        for tile in range(lo // tile_w, (hi - 1) // tile_w + 1):
            a, b = max(lo, tile * tile_w), min(hi, (tile + 1) * tile_w)
            yield a - lo, grouped[:, tile, :, 0, a - tile * tile_w : b - tile * tile_w]


@dataclasses.dataclass(frozen=True, eq=False)
class PerChannelAffine:
    """``source * scale + shift``, one (scale, shift) per group and channel, not yet applied: gLN's
    output (its statistics fold into the pair). Shapes: source (G, C, T) whole or tiled; scale and
    shift (G, C, 1) float32 arrays. ``shape`` is the result's."""

    source: np.ndarray | TiledTensor
    scale: np.ndarray
    shift: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.source.dtype

    def materialize(self) -> np.ndarray:
        """The whole result (G, C, T)."""
        out = np.empty(self.shape, np.float32)
        self.write(out, 0, self.shape[-1])
        return out

    def write(self, out: np.ndarray, lo: int, hi: int) -> None:
        """Frames lo:hi of the result into ``out`` (G, C, hi - lo), any strides: one fused
        multiply-add (``host_math.addcmul_into``), the same kernel whatever the slice."""
        if isinstance(self.source, TiledTensor):
            for offset, piece in self.source.pieces(lo, hi):
                _addcmul(out[:, :, offset : offset + piece.shape[-1]], piece, self.scale, self.shift)
        else:
            _addcmul(out, self.source[:, :, lo:hi], self.scale, self.shift)


_copy = host_math.copy_into
_addcmul = host_math.addcmul_into


Stored = np.ndarray | TiledTensor | PerChannelAffine


def whole(x: Stored) -> np.ndarray:
    """Any stored form as the whole tensor (G, C, length)."""
    return x if isinstance(x, np.ndarray) else x.materialize()


Allocate = Callable[[tuple], np.ndarray]


def _fresh(shape: tuple) -> np.ndarray:
    return np.empty(shape, np.float32)


def gather_tiles(
    x: Stored,
    geometry: Geometry,
    tile_w: int,
    n_tiles: int,
    empty: Allocate = _fresh,
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    """Cuts the tiles' input windows out of a tensor in any stored form, each window copied (or its
    affine applied) once into a zeroed batch (the zeros are the reference's padding outside the
    utterance). A tiled tensor a pointwise stage reads at its own tiling is returned as it is; a
    tiled source at the same tiling is cut per neighbouring tile offset (``_gather_from_tiles``).
    ``empty(shape)`` gives the float32 array the windows are written into (``ScratchBuffers``);
    ``window`` = (left, width) cuts another window than the geometry's (a tile's edges,
    ``StageInput.window``): ``width`` frames from ``left`` frames before each tile's first frame.

    Shape: x (G, C, length) -> (G * n_tiles, C, 1, width), width = geometry.tile_input_width(tile_w)
    by default, group-major (batch index = g * n_tiles + tile).
    """
    tiled = _tiled_source(x)
    if (
        window is None
        and geometry == POINTWISE
        and isinstance(x, TiledTensor)
        and x.tile_w == tile_w
        and x.n_tiles == n_tiles
    ):
        return np.ascontiguousarray(x.tiles)  # a copy only for a channel block's slice
    groups, channels, length = x.shape
    left, width = window or (geometry.pad_left, geometry.tile_input_width(tile_w))
    if geometry.stride == 1 and tiled is not None and tiled.tile_w == tile_w:
        return _gather_from_tiles(x, left, width, n_tiles, empty).reshape(groups * n_tiles, channels, 1, width)
    out = empty((groups, n_tiles, channels, width))
    for tile in range(n_tiles):
        start = tile * tile_w * geometry.stride - left
        lo, hi = min(max(start, 0), start + width), max(min(start + width, length), max(start, 0))
        out[:, tile, :, : lo - start] = 0  # before the utterance
        if hi > lo:
            _write_frames(x, out[:, tile, :, lo - start : hi - start], lo, hi)
        out[:, tile, :, hi - start :] = 0  # after it
    return out.reshape(groups * n_tiles, channels, 1, width)


def _gather_from_tiles(
    x: TiledTensor | PerChannelAffine, left: int, width: int, n_tiles: int, empty: Allocate = _fresh
) -> np.ndarray:
    """Windows of ``width`` frames from ``left`` frames before each tile, cut from a tiled tensor at
    the same tiling (stride 1): one copy (or affine) per neighbouring tile offset k, for all tiles at
    once, instead of one per tile and piece. Returns (G, n_tiles, C, width); zeros outside
    0..length as the reference pads."""
    source = _tiled_source(x)
    tile_w, length = source.tile_w, source.length
    src = source.grouped()[:, :, :, 0, :]  # (G, n_src, C, tile_w), a view
    out = empty((source.groups, n_tiles, src.shape[2], width))
    for k in range(-(left // tile_w) - 1, (width - left) // tile_w + 1):
        c0, c1 = max(0, k * tile_w + left), min(width, (k + 1) * tile_w + left)  # window columns tile t + k fills
        if c0 >= c1:
            continue
        t0, t1 = max(0, -k), max(max(0, -k), min(n_tiles, source.n_tiles - k))
        out[:, :t0, :, c0:c1] = 0  # tile t + k before the utterance
        out[:, t1:, :, c0:c1] = 0  # or after it
        if t0 == t1:
            continue
        s0 = c0 - k * tile_w - left
        piece = src[:, t0 + k : t1 + k, :, s0 : s0 + c1 - c0]
        if isinstance(x, PerChannelAffine):
            _addcmul(out[:, t0:t1, :, c0:c1], piece, x.scale[:, None], x.shift[:, None])
        else:
            _copy(out[:, t0:t1, :, c0:c1], piece)
    for tile in range(n_tiles):  # past the utterance: the affine's padding columns are not zero
        first = tile * tile_w - left
        if first + width > length:
            out[:, tile, :, max(0, length - first) :] = 0
    return out


def _tiled_source(x: Stored) -> TiledTensor | None:
    source = x.source if isinstance(x, PerChannelAffine) else x
    return source if isinstance(source, TiledTensor) else None


def _write_frames(x: Stored, out: np.ndarray, lo: int, hi: int) -> None:
    """Frames lo:hi of ``x`` into ``out`` (G, C, hi - lo)."""
    if isinstance(x, PerChannelAffine):
        x.write(out, lo, hi)
    elif isinstance(x, TiledTensor):
        for offset, piece in x.pieces(lo, hi):
            out[:, :, offset : offset + piece.shape[-1]] = piece
    else:
        out[...] = x[:, :, lo:hi]


def scatter_tiles(tiles: np.ndarray, groups: int, length: int) -> np.ndarray:
    """Stitches tile outputs back in one copy. Shape: (G * n_tiles, C, 1, W) -> (G, C, length)."""
    batch, channels, _, width = tiles.shape
    n_tiles = batch // groups
    joined = tiles.reshape(groups, n_tiles, channels, width).transpose(0, 2, 1, 3)  # a view
    out = np.empty((groups, channels, length), tiles.dtype)
    full = min(length // width, n_tiles)
    out[:, :, : full * width].reshape(groups, channels, full, width)[...] = joined[:, :, :full]
    rest = length - full * width
    if rest:
        out[:, :, full * width :] = joined[:, :, full, :rest]
    return out


def per_tile_batch(value: np.ndarray, groups: int, n_tiles: int, empty: Allocate = _fresh) -> np.ndarray:
    """A per-group value (G, C, 1), G = 1 or ``groups``, as a per-tile input (groups * n_tiles, C, 1, 1),
    written into ``empty(shape)``."""
    channels = value.shape[1]
    tiles = empty((groups, n_tiles, channels))
    tiles[...] = value.reshape(value.shape[0], 1, channels)
    return tiles.reshape(groups * n_tiles, channels, 1, 1)


def edges_from_neighbours(
    edges: np.ndarray, groups: int, left: bool, length: int, tile_w: int, empty: Allocate = _fresh
) -> np.ndarray:
    """Halo edges for every tile from the producing stage's per-tile edges (``TileEdge``), n <= tile_w
    frames each: tile t's left edge is tile t-1's tail, its right edge tile t+1's head; zeros before
    the utterance, after the last tile and at frames past ``length``.

    Shape: edges (G * n_tiles, C, 1, n) -> (G * n_tiles, C, 1, n), group-major."""
    batch, channels, _, n = edges.shape
    n_tiles = batch // groups
    source = edges.reshape(groups, n_tiles, channels, n)
    out = empty((groups, n_tiles, channels, n))
    if left:  # frames t * tile_w - n .. t * tile_w - 1: inside the utterance for t >= 1
        out[:, 0] = 0
        out[:, 1:] = source[:, :-1]
    else:  # frames (t + 1) * tile_w .. + n - 1
        out[:, -1] = 0
        out[:, :-1] = source[:, 1:]
        if n_tiles >= 2:
            out[:, -2, :, max(0, length - (n_tiles - 1) * tile_w) :] = 0
    return out.reshape(batch, channels, 1, n)


def valid_mask(geometry: Geometry, tile_w: int, n_tiles: int, length: int, groups: int) -> np.ndarray:
    """(groups * n_tiles, 1, 1, width): 1 where a tile's input window lies inside 0..length, else 0."""
    width = geometry.tile_input_width(tile_w)
    starts = np.array([geometry.tile_input_start(t * tile_w) for t in range(n_tiles)])
    index = starts[:, None] + np.arange(width)[None, :]
    mask = ((index >= 0) & (index < length)).astype(np.float32)
    return np.tile(mask, (groups, 1)).reshape(groups * n_tiles, 1, 1, width)


def _shared(tiles: np.ndarray, name: str, store: Mapping[str, Stored]) -> bool:
    """Whether a stored tensor other than ``name`` holds (a view of) ``tiles`` (an alias)."""
    return any(
        np.shares_memory(tiles, _tiled_source(x).tiles)
        for key, x in store.items()
        if key != name and _tiled_source(x) is not None
    )


def _same_tiling(*xs: Stored) -> bool:
    return (
        all(isinstance(x, TiledTensor) for x in xs)
        and len({(x.tiles.shape[0], x.tile_w, x.groups, x.length) for x in xs}) == 1
    )


class ScratchBuffers:
    """Float32 buffers reused, run after run, for the windows the executor cuts for a stage call
    (the backend contract: inputs are not kept after the call). A fresh array of that size costs its
    page faults on every run, more than the copy itself (docs/benchmarks.md, "Host path decisions").
    ``take(slot, shape)``: slot k is the call's k-th window batch; each slot keeps one flat buffer,
    grown to the largest shape asked of it."""

    def __init__(self) -> None:
        self._flat: list[np.ndarray] = []

    def take(self, slot: int, shape: tuple) -> np.ndarray:
        size = math.prod(shape)
        while len(self._flat) <= slot:
            self._flat.append(np.empty(0, np.float32))
        if self._flat[slot].size < size:
            self._flat[slot] = np.empty(size, np.float32)
        return self._flat[slot][:size].reshape(shape)
