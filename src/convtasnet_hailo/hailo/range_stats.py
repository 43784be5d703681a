"""Ranges of calibration values gathered a chunk of tiles at a time (bounded memory).

Calibration files hold ``count`` tiles of every stage input (NHWC, ``quantization.calibration``);
running a stage in float64 on all of them at once holds every op output of all of them
(1024 tiles of 128 channels at tile_w 256: 268 MB per value). :func:`tile_chunks` reads a
stage's paired inputs ``CHUNK_TILES`` tiles at a time, and :class:`RangeStats` keeps per value
what the emulation needs: min/max (exact over chunks) and the clipping percentiles of the same
seeded sample of values :func:`quant_scheme.percentile_ranges` draws from the whole array (the
sample's positions are drawn from the whole array's size first, then picked up chunk by chunk).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from . import quant_scheme as qs
from .layout import nhwc_to_nchw

#: Calibration tiles run through a stage at once.
CHUNK_TILES = 64


def _mapped(path: Path) -> np.ndarray:
    """A calibration file mapped read-only (never unpickled: ``records.load_array``)."""
    from ..records import load_array

    return load_array(path, "calibration array", "run `convtasnet-hailo noise` (or build) again", mmap=True)


def tile_count(path: Path) -> int:
    """Tiles in a calibration file (read from its header, nothing loaded)."""
    return int(_mapped(path).shape[0])


def read_tiles(path: Path, tiles: slice | np.ndarray) -> np.ndarray:
    """Tiles of a calibration file (NHWC on disk) as float64 NCHW; only those tiles are read."""
    mapped = _mapped(path)
    try:
        return nhwc_to_nchw(np.asarray(mapped[tiles])).astype(np.float64)
    finally:
        del mapped  # unmapped: the pages read leave the process's memory


def tile_chunks(files: Mapping[str, Path], chunk: int | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(first tile, {input: float64 NCHW tiles}) of paired inputs, ``chunk`` (default
    :data:`CHUNK_TILES`) tiles at a time."""
    chunk = chunk or CHUNK_TILES
    total = max(tile_count(path) for path in files.values())
    for first in range(0, total, chunk):
        yield first, {name: read_tiles(path, slice(first, first + chunk)) for name, path in files.items()}


class _Sample:
    """The values at the seeded positions ``percentile_ranges`` would draw from the whole array."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size > qs.PERCENTILE_SAMPLE:
            self.positions = np.random.default_rng(seed).integers(0, size, qs.PERCENTILE_SAMPLE)
        else:
            self.positions = np.arange(size)
        self.order = np.argsort(self.positions, kind="stable")
        self.sorted = self.positions[self.order]
        self.values = np.empty(len(self.positions), np.float64)

    def add(self, flat_first: int, chunk: np.ndarray) -> None:
        lo, hi = np.searchsorted(self.sorted, [flat_first, flat_first + chunk.size])
        self.values[self.order[lo:hi]] = chunk.reshape(-1)[self.sorted[lo:hi] - flat_first]


class RangeStats:
    """min/max of every value noted, and (``percentiles``) the clipping percentiles of the first
    array noted under each name (the first stage that makes or reads it), chunk by chunk."""

    def __init__(self, percentiles: bool = True) -> None:
        self.minmax: dict[str, tuple[float, float]] = {}
        self.percentiles: dict[str, dict[float, tuple[float, float]]] = {}
        self._want_percentiles = percentiles
        self._open: dict[str, _Sample] = {}  # names whose first array is being read

    def note(self, name: str, chunk: np.ndarray, first_tile: int, total_tiles: int) -> None:
        """``chunk`` (tiles ``first_tile ..`` of ``total_tiles``) of the value ``name``."""
        lo, hi = float(chunk.min()), float(chunk.max())
        old = self.minmax.get(name)
        self.minmax[name] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))
        if not self._want_percentiles or name in self.percentiles:
            return
        per_tile = chunk.size // len(chunk)
        if first_tile == 0:
            self._open[name] = _Sample(per_tile * total_tiles)
        if name in self._open:
            self._open[name].add(first_tile * per_tile, chunk)

    def end_stage(self) -> None:
        """A stage's chunks are all noted: its names' percentiles are final."""
        for name, sample in self._open.items():
            self.percentiles[name] = qs.percentile_ranges(sample.values)
        self._open = {}
