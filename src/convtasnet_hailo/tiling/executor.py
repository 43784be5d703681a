"""The stitched executor: runs a stage plan over an utterance of any length, tile by tile.

Each stage's output is cut into tiles of ``tile_w`` frames; every tile's inputs are gathered
with exactly the halo the stage's geometry asks for, zero-filled outside the utterance (the
reference's padding of the tensor the conv sees). All tiles of a stage (and all sources) go to
the backend as one batch; only the first ``length`` frames of the stitched result are real.

Stage outputs stay in the layout the backend returned them (``TiledTensor``): a stage that reads
them frame for frame (pointwise) gets the same batch back without a copy, one with a halo cuts its
windows straight from the tiles, and gLN takes its statistics there too. A gLN output is kept as
its per-channel affine (``PerChannelAffine``) and applied while the reading stage's tiles are
cut; channel blocks are cut from and assembled on the tiles. With ``--gln-in-stages`` the stages
output per-tile moments instead and the host only combines them (``GlnFold``); the executor feeds
per-tile inputs and makes the valid masks. Whole tensors are written only for host steps that
need them, for the observer and for the caller. (bench: the host's whole-tensor
passes were what kept this path behind the monolithic model; each of these removes one.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from typing import Callable, Mapping, Union

import numpy as np

from ..errors import UserError
from ..model.config import NormType
from ..plan.builder import StagePlan, step_outputs
from ..plan.host_steps import (ActivateMask, AddTensors, Alias, AssembleBlocks, GlnFold, Normalize, SplitChannels,
                               SplitSources, assemble_rows, gln_fold, gln_from_tile_moments, gln_statistics)
from ..plan.stages import POINTWISE, Geometry, InputKind, Stage

Observer = Callable[[str, np.ndarray], None]

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
    def from_backend(cls, tiles: np.ndarray, groups: int, length: int) -> "TiledTensor":
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
            yield a - lo, grouped[:, tile, :, 0, a - tile * tile_w:b - tile * tile_w]


@dataclasses.dataclass(frozen=True, eq=False)
class PerChannelAffine:
    """``source * scale + shift``, one (scale, shift) per group and channel, not yet applied: gLN's
    output (its statistics fold into the pair). Shapes: source (G, C, T) whole or tiled; scale and
    shift (G, C, 1) float32 torch tensors. ``shape`` is the result's."""

    source: Union[np.ndarray, TiledTensor]
    scale: object
    shift: object

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
        """Frames lo:hi of the result into ``out`` (G, C, hi - lo), any strides: torch's fused
        ``addcmul``, the same kernel whatever the slice."""
        if isinstance(self.source, TiledTensor):
            for offset, piece in self.source.pieces(lo, hi):
                _addcmul(out[:, :, offset:offset + piece.shape[-1]], piece, self.scale, self.shift)
        else:
            _addcmul(out, self.source[:, :, lo:hi], self.scale, self.shift)


def _copy(out: np.ndarray, x: np.ndarray) -> None:
    """``out[...] = x`` for strided windows through torch's copy, which runs on every core and beats
    numpy's assignment for the halo windows (docs/benchmarks.md, "Host path decisions")."""
    import torch

    torch.from_numpy(out).copy_(torch.from_numpy(x))


def _addcmul(out: np.ndarray, x: np.ndarray, scale, shift) -> None:
    import torch

    torch.addcmul(shift, torch.from_numpy(x), scale, out=torch.from_numpy(out))


Stored = Union[np.ndarray, TiledTensor, PerChannelAffine]


def whole(x: Stored) -> np.ndarray:
    """Any stored form as the whole tensor (G, C, length)."""
    return x if isinstance(x, np.ndarray) else x.materialize()


Allocate = Callable[[tuple], np.ndarray]


def _fresh(shape: tuple) -> np.ndarray:
    return np.empty(shape, np.float32)


def gather_tiles(x: Stored, geometry: Geometry, tile_w: int, n_tiles: int, empty: Allocate = _fresh,
                 window: tuple[int, int] | None = None) -> np.ndarray:
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
    if window is None and geometry == POINTWISE and isinstance(x, TiledTensor) and x.tile_w == tile_w \
            and x.n_tiles == n_tiles:
        return np.ascontiguousarray(x.tiles)  # a copy only for a channel block's slice
    groups, channels, length = x.shape
    left, width = window or (geometry.pad_left, geometry.tile_input_width(tile_w))
    if geometry.stride == 1 and tiled is not None and tiled.tile_w == tile_w:
        return _gather_from_tiles(x, left, width, n_tiles, empty).reshape(groups * n_tiles, channels, 1, width)
    out = empty((groups, n_tiles, channels, width))
    for tile in range(n_tiles):
        start = tile * tile_w * geometry.stride - left
        lo, hi = min(max(start, 0), start + width), max(min(start + width, length), max(start, 0))
        out[:, tile, :, :lo - start] = 0  # before the utterance
        if hi > lo:
            _write_frames(x, out[:, tile, :, lo - start:hi - start], lo, hi)
        out[:, tile, :, hi - start:] = 0  # after it
    return out.reshape(groups * n_tiles, channels, 1, width)


def _gather_from_tiles(x: TiledTensor | PerChannelAffine, left: int, width: int, n_tiles: int,
                       empty: Allocate = _fresh) -> np.ndarray:
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
        piece = src[:, t0 + k:t1 + k, :, s0:s0 + c1 - c0]
        if isinstance(x, PerChannelAffine):
            _addcmul(out[:, t0:t1, :, c0:c1], piece, x.scale[:, None], x.shift[:, None])
        else:
            _copy(out[:, t0:t1, :, c0:c1], piece)
    for tile in range(n_tiles):  # past the utterance: the affine's padding columns are not zero
        first = tile * tile_w - left
        if first + width > length:
            out[:, tile, :, max(0, length - first):] = 0
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
            out[:, :, offset:offset + piece.shape[-1]] = piece
    else:
        out[...] = x[:, :, lo:hi]


def scatter_tiles(tiles: np.ndarray, groups: int, length: int) -> np.ndarray:
    """Stitches tile outputs back in one copy. Shape: (G * n_tiles, C, 1, W) -> (G, C, length)."""
    batch, channels, _, width = tiles.shape
    n_tiles = batch // groups
    joined = tiles.reshape(groups, n_tiles, channels, width).transpose(0, 2, 1, 3)  # a view
    out = np.empty((groups, channels, length), tiles.dtype)
    full = min(length // width, n_tiles)
    out[:, :, :full * width].reshape(groups, channels, full, width)[...] = joined[:, :, :full]
    rest = length - full * width
    if rest:
        out[:, :, full * width:] = joined[:, :, full, :rest]
    return out


def global_norm_affine(step: Normalize, x: Stored) -> PerChannelAffine:
    """gLN of ``x`` as its per-channel affine. A whole tensor gets the layer's own statistics
    (``mean`` and ``var`` over (C, T), as the reference reduces them); a tiled one gets the same
    statistics taken over its tiles (the zero columns past the utterance corrected for), which
    round differently by float32 reduction order only (the parity grid measures it)."""
    import torch

    if isinstance(x, TiledTensor):
        mean, var = _tiled_statistics(x)
    else:
        x = whole(x)
        mean, var = gln_statistics(torch.from_numpy(np.ascontiguousarray(x)))
    scale, shift = gln_fold(step.gamma, step.beta, mean.numpy(), var.numpy())
    return PerChannelAffine(x, torch.from_numpy(scale), torch.from_numpy(shift))


def _tiled_statistics(x: TiledTensor):
    """Mean and biased variance per group over (C, length) of a tiled tensor, (G, 1, 1) float32.

    Its padding columns are zero, so over all n_all stored values, with p = n_all - n of them
    padding: sum is the valid sum, and sum (v - m)^2 over the valid values is
    n_all * var_all + n_all * (m_all - m)^2 - p * m^2 (the deviations of the zeros removed)."""
    import torch

    groups = x.groups
    values = torch.from_numpy(x.tiles).view(groups, -1)
    n_all = values.shape[1]
    n = x.shape[1] * x.length
    var_all, mean_all = torch.var(values, dim=1, unbiased=False).double(), values.mean(dim=1).double()
    mean = mean_all * (n_all / n)
    var = (n_all * var_all + n_all * (mean_all - mean) ** 2 - (n_all - n) * mean ** 2) / n
    return mean.float().view(groups, 1, 1), var.float().view(groups, 1, 1)


def gln_affine_from_moments(step: GlnFold, x: TiledTensor, tile_mean: np.ndarray,
                            tile_sum_sq: np.ndarray) -> dict[str, np.ndarray]:
    """``GlnFold`` on the moments its producing stage output: (G * n_tiles, C, 1, 1) each, for the
    tiled tensor ``x`` -> scale and shift, (G, C, 1) each."""
    shape = (x.groups, x.n_tiles, x.shape[1])
    last_tile = x.grouped()[:, -1, :, 0, :x.length - (x.n_tiles - 1) * x.tile_w]
    mean, var = gln_from_tile_moments(tile_mean.reshape(shape), tile_sum_sq.reshape(shape), x.tile_w, last_tile)
    return step.affine(mean, var)


def per_tile_batch(value: np.ndarray, groups: int, n_tiles: int, empty: Allocate = _fresh) -> np.ndarray:
    """A per-group value (G, C, 1), G = 1 or ``groups``, as a per-tile input (groups * n_tiles, C, 1, 1),
    written into ``empty(shape)``."""
    channels = value.shape[1]
    tiles = empty((groups, n_tiles, channels))
    tiles[...] = value.reshape(value.shape[0], 1, channels)
    return tiles.reshape(groups * n_tiles, channels, 1, 1)


def edges_from_neighbours(edges: np.ndarray, groups: int, left: bool, length: int, tile_w: int,
                          empty: Allocate = _fresh) -> np.ndarray:
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
            out[:, -2, :, max(0, length - (n_tiles - 1) * tile_w):] = 0
    return out.reshape(batch, channels, 1, n)


def valid_mask(geometry: Geometry, tile_w: int, n_tiles: int, length: int, groups: int) -> np.ndarray:
    """(groups * n_tiles, 1, 1, width): 1 where a tile's input window lies inside 0..length, else 0."""
    width = geometry.tile_input_width(tile_w)
    starts = np.array([geometry.tile_input_start(t * tile_w) for t in range(n_tiles)])
    index = starts[:, None] + np.arange(width)[None, :]
    mask = ((index >= 0) & (index < length)).astype(np.float32)
    return np.tile(mask, (groups, 1)).reshape(groups * n_tiles, 1, 1, width)


def split_channels(step: SplitChannels, x: TiledTensor | PerChannelAffine) -> dict[str, Stored]:
    """A tiled tensor (or a pending affine of one) cut into consecutive channel blocks: views of its
    tiles (with their slice of the affine), as ``SplitChannels`` cuts whole tensors."""
    bounds = np.cumsum((0,) + step.sizes)
    source = _tiled_source(x)
    out: dict[str, Stored] = {}
    for name, lo, hi in zip(step.outputs, bounds[:-1], bounds[1:]):
        part = TiledTensor(source.tiles[:, lo:hi], source.groups, source.length)
        out[name] = PerChannelAffine(part, x.scale[:, lo:hi], x.shift[:, lo:hi]) if isinstance(x, PerChannelAffine) \
            else part
    return out


def split_sources_tiled(x: TiledTensor, n_src: int) -> TiledTensor:
    """``SplitSources`` on tiles: (n_tiles, n_src * N, 1, W), source-major channels -> (n_src *
    n_tiles, N, 1, W), one group per source (one copy)."""
    tiles = x.tiles.reshape(x.n_tiles, n_src, -1, 1, x.tile_w).transpose(1, 0, 2, 3, 4)
    return TiledTensor(np.ascontiguousarray(tiles).reshape(n_src * x.n_tiles, -1, 1, x.tile_w), n_src, x.length)


def activate_tiled(step: ActivateMask, x: TiledTensor, in_place: bool = False) -> TiledTensor:
    """``ActivateMask`` on tiles (sources are the groups), in place if asked; the padding columns
    are zeroed again (a sigmoid or softmax of zero is not zero)."""
    tiles = step.activate(x.grouped(), in_place).reshape(x.tiles.shape)
    return TiledTensor.from_backend(tiles, x.groups, x.length)


def _shared(tiles: np.ndarray, name: str, store: Mapping[str, Stored]) -> bool:
    """Whether a stored tensor other than ``name`` holds (a view of) ``tiles`` (an alias)."""
    return any(np.shares_memory(tiles, _tiled_source(x).tiles) for key, x in store.items()
               if key != name and _tiled_source(x) is not None)


def _same_tiling(*xs: Stored) -> bool:
    return all(isinstance(x, TiledTensor) for x in xs) and \
        len({(x.tiles.shape[0], x.tile_w, x.groups, x.length) for x in xs}) == 1


def assemble_tiled_blocks(partials: list[list[TiledTensor]]) -> TiledTensor:
    """``AssembleBlocks`` on tiles, with its own arithmetic (``assemble_rows``). Shape: partials[k][j]
    tiles (B, C_k, 1, W) -> (B, sum C_k, 1, W); the zero padding columns stay zero."""
    first = partials[0][0]
    tiles = np.empty((first.tiles.shape[0], sum(row[0].tiles.shape[1] for row in partials), 1, first.tile_w),
                     np.float32)
    assemble_rows([[part.tiles for part in row] for row in partials], tiles)
    return TiledTensor(tiles, first.groups, first.length)


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


class HostClock:
    """Seconds of host work by kind, added up over runs (bench): ``gln_statistics``, ``gather``
    (tile windows cut for a stage), ``gather+gln_affine`` (the same, applying a pending gLN
    affine), ``stage_outputs`` (taking the backend's tiles), ``whole_tensors`` (for the observer
    and the caller) and each other host step by its type (with any whole tensors it needs)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._kind, self._started = "", 0.0

    def __call__(self, kind: str) -> "HostClock":
        """``with clock(kind):`` times the block (not re-entrant; a plain context manager, a few
        times cheaper per use than a generator-based one, and it runs a few hundred times a run)."""
        self._kind = kind
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self._kind] = self.seconds.get(self._kind, 0.0) + time.perf_counter() - self._started


class StitchedExecutor:
    """Executes ``plan`` through ``backend`` with tiles of ``tile_w`` frames.

    ``observer(name, tensor)`` sees every tensor the plan produces, as soon as it exists;
    tensors are freed after their last use, so long utterances do not keep every block alive.
    ``clock`` (a ``HostClock``) adds up where the host's own time goes.
    """

    def __init__(self, plan: StagePlan, backend, tile_w: int, clock: HostClock | None = None):
        self.plan = plan
        self.backend = backend
        self.tile_w = check_tile_width(tile_w)
        self.clock = clock or (lambda kind: contextlib.nullcontext())
        backend.prepare(plan, self.tile_w)
        self.stage_batches: dict[str, int] = {}
        self._scratch = ScratchBuffers()
        self._masks: dict[tuple, np.ndarray] = {}  # valid masks by (geometry, n_tiles, length, groups)

    def run(self, inputs: Mapping[str, np.ndarray], observer: Observer | None = None,
            keep: tuple[str, ...] = (), on_step: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
        """Runs every step. ``inputs``: (G, C, length) float32 arrays named as ``plan.inputs``.
        Returns the tensors named in ``keep`` (default: the last step's outputs); ``on_step``
        is called after each step (progress bars)."""
        missing = [name for name in self.plan.inputs if name not in inputs]
        if missing:
            raise UserError(f"the {self.plan.path.value} plan needs input(s) {', '.join(missing)}")
        keep = keep or step_outputs(self.plan.steps[-1])
        store: dict[str, Stored] = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
        last_use = self.plan.last_uses()
        for index, step in enumerate(self.plan.steps):
            if isinstance(step, Stage):
                produced = self._run_stage(step, store)
            else:
                dying = {n for n in step.reads if last_use.get(n) == index and n not in keep}
                produced = self._run_host_step(step, store, dying)
            store.update(produced)
            if observer is not None:
                for name, tensor in produced.items():
                    with self.clock("whole_tensors"):
                        tensor = whole(tensor)
                    observer(name, tensor)
            for name in [n for n in store if last_use.get(n, -1) == index and n not in keep]:
                del store[name]
            if on_step is not None:
                on_step()
        with self.clock("whole_tensors"):
            return {name: whole(store[name]) for name in keep}

    def _run_host_step(self, step, store: dict[str, Stored], dying: set[str]) -> dict[str, Stored]:
        gln = isinstance(step, GlnFold) or (isinstance(step, Normalize) and step.norm is NormType.GLN)
        kind = "gln_statistics" if gln else type(step).__name__
        with self.clock(kind):
            return self._host_step(step, store, dying)

    @staticmethod
    def _host_step(step, store: dict[str, Stored], dying: frozenset[str] | set[str] = frozenset()) -> dict[str, Stored]:
        """gLN, skip sums, aliases, channel blocks and the mask's split and activation keep the tiled
        forms; every other host step gets whole tensors. ``dying``: the step's reads no later step
        reads (a skip sum adds into one of those in place: a fresh array that size costs its page
        faults, more than the add)."""
        if isinstance(step, Normalize) and step.norm is NormType.GLN:
            return {step.output: global_norm_affine(step, store[step.input])}
        if isinstance(step, GlnFold) and isinstance(store[step.input], TiledTensor):
            return gln_affine_from_moments(step, store[step.input], store[step.tile_mean], store[step.tile_sum_sq])
        if isinstance(step, Alias):
            return {step.output: store[step.input]}
        if isinstance(step, AddTensors):
            a, b = store[step.a], store[step.b]
            if isinstance(a, TiledTensor) and isinstance(b, TiledTensor) and a.tiles.shape == b.tiles.shape:
                into = a.tiles if step.a in dying and not _shared(a.tiles, step.a, store) else None
                return {step.output: TiledTensor(np.add(a.tiles, b.tiles, out=into), a.groups, a.length)}  # 0 + 0
        if isinstance(step, SplitSources) and isinstance(store[step.input], TiledTensor) \
                and store[step.input].groups == 1:
            return {step.output: split_sources_tiled(store[step.input], step.n_src)}
        if isinstance(step, ActivateMask) and isinstance(store[step.input], TiledTensor):
            x = store[step.input]
            in_place = step.input in dying and not _shared(x.tiles, step.input, store)
            return {step.output: activate_tiled(step, x, in_place)}
        if isinstance(step, SplitChannels) and _tiled_source(store[step.input]) is not None:
            return split_channels(step, store[step.input])
        if isinstance(step, AssembleBlocks):
            partials = [[store[name] for name in row] for row in step.partials]
            if _same_tiling(*(x for row in partials for x in row)):
                return {step.output: assemble_tiled_blocks(partials)}
        for name in step.reads:
            store[name] = whole(store[name])
        return step.apply(store)

    def _output_length(self, stage: Stage, store: Mapping[str, Stored]) -> int:
        lengths = {p.name: p.geometry.output_length(store[p.tensor].shape[-1]) for p in stage.inputs
                   if p.kind is InputKind.TILES}
        if len(set(lengths.values())) != 1:
            raise RuntimeError(f"stage {stage.name}: inputs imply different lengths {lengths}")
        length = next(iter(lengths.values()))
        if length < 1:
            raise UserError(
                f"input too short for stage {stage.name}: it produces no frame "
                f"(the model needs at least one full encoder window of samples)"
            )
        return length

    def _input_batch(self, stage: Stage, slot: int, store: Mapping[str, Stored], n_tiles: int,
                     groups: int) -> np.ndarray:
        """The batch for input ``slot`` of ``stage``, by the port's kind (``InputKind``), written
        into the slot's reused buffer where it is made here."""
        port = stage.inputs[slot]
        empty = functools.partial(self._scratch.take, slot)
        if port.kind is InputKind.VALID_MASK:
            with self.clock("gather"):
                key = (port.geometry, n_tiles, store[port.tensor].shape[-1], groups)
                if key not in self._masks:
                    self._masks[key] = valid_mask(port.geometry, self.tile_w, *key[1:])
                return self._masks[key]
        source = store[port.tensor]
        if port.kind is InputKind.PER_TILE:
            with self.clock("gather"):
                return per_tile_batch(source, groups, n_tiles, empty)
        edges = store.get(port.edges_from) if port.edges_from else None
        if edges is not None and edges.shape[-1] == port.width(self.tile_w):
            with self.clock("gather"):
                return edges_from_neighbours(edges, groups, port.kind is InputKind.LEFT_EDGE, source.shape[-1],
                                             self.tile_w, empty)
        with self.clock("gather+gln_affine" if isinstance(source, PerChannelAffine) else "gather"):
            window = None if port.kind is InputKind.TILES else port.window(self.tile_w)
            tiles = gather_tiles(source, port.geometry, self.tile_w, n_tiles, empty, window)
            if tiles.shape[0] == groups * n_tiles:
                return tiles
            # a per-utterance tensor meets per-source ones
            repeated = self._scratch.take(len(stage.inputs) + slot, (groups,) + tiles.shape)
            repeated[...] = tiles
            return repeated.reshape((groups * n_tiles,) + tiles.shape[1:])

    def _run_stage(self, stage: Stage, store: Mapping[str, Stored]) -> dict[str, Stored]:
        length = self._output_length(stage, store)
        n_tiles = math.ceil(length / self.tile_w)
        groups = max(store[p.tensor].shape[0] for p in stage.inputs  # edges are per tile: (batch, ...)
                     if p.kind in (InputKind.TILES, InputKind.PER_TILE))
        batch = {port.name: self._input_batch(stage, slot, store, n_tiles, groups)
                 for slot, port in enumerate(stage.inputs)}
        outputs = self.backend.run_stage(stage, batch)
        self.stage_batches[stage.name] = self.stage_batches.get(stage.name, 0) + 1
        with self.clock("stage_outputs"):
            return {port.name: np.asarray(outputs[port.name], np.float32) if port.per_tile or port.edge is not None else
                    TiledTensor.from_backend(outputs[port.name], groups, length)
                    for port in stage.outputs}
