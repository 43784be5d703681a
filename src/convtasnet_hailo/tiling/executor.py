"""The stitched executor: runs a stage plan over an utterance of any length, tile by tile.

Each stage's output is cut into tiles of ``tile_w`` frames; every tile's inputs are gathered
with exactly the halo the stage's geometry asks for, zero-filled outside the utterance (the
reference's padding of the tensor the conv sees). All tiles of a stage (and all sources) go to
the backend as one batch; the host keeps the first ``length`` frames of the stitched result.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from ..errors import UserError
from ..plan.builder import StagePlan, step_outputs
from ..plan.stages import Geometry, Stage

Observer = Callable[[str, np.ndarray], None]

#: Widest tile the executor accepts; wider tiles make no sense for a fixed-shape NPU stage.
MAX_TILE_W = 1 << 16


def check_tile_width(tile_w: int) -> int:
    if not isinstance(tile_w, int) or isinstance(tile_w, bool) or not 1 <= tile_w <= MAX_TILE_W:
        raise UserError(f"tile width {tile_w!r} is not served by the plan: use an integer in 1..{MAX_TILE_W}")
    return tile_w


def gather_tiles(x: np.ndarray, geometry: Geometry, tile_w: int, n_tiles: int) -> np.ndarray:
    """Cuts the tiles' input windows out of a whole tensor, in one copy: each window is copied
    once into a zeroed batch (the zeros are the reference's padding outside the utterance).

    Shape: x (G, C, length) -> (G * n_tiles, C, 1, geometry.tile_input_width(tile_w)),
    group-major (batch index = g * n_tiles + tile).
    """
    groups, channels, length = x.shape
    width = geometry.tile_input_width(tile_w)
    out = np.empty((groups, n_tiles, channels, width), x.dtype)
    for tile in range(n_tiles):
        start = geometry.tile_input_start(tile * tile_w)
        lo, hi = min(max(start, 0), start + width), max(min(start + width, length), max(start, 0))
        out[:, tile, :, :lo - start] = 0  # before the utterance
        out[:, tile, :, lo - start:hi - start] = x[:, :, lo:hi]
        out[:, tile, :, hi - start:] = 0  # after it
    return out.reshape(groups * n_tiles, channels, 1, width)


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


class StitchedExecutor:
    """Executes ``plan`` through ``backend`` with tiles of ``tile_w`` frames.

    ``observer(name, tensor)`` sees every tensor the plan produces, as soon as it exists;
    tensors are freed after their last use, so long utterances do not keep every block alive.
    """

    def __init__(self, plan: StagePlan, backend, tile_w: int):
        self.plan = plan
        self.backend = backend
        self.tile_w = check_tile_width(tile_w)
        backend.prepare(plan, self.tile_w)
        self.stage_batches: dict[str, int] = {}

    def run(self, inputs: Mapping[str, np.ndarray], observer: Observer | None = None,
            keep: tuple[str, ...] = (), on_step: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
        """Runs every step. ``inputs``: (G, C, length) float32 arrays named as ``plan.inputs``.
        Returns the tensors named in ``keep`` (default: the last step's outputs); ``on_step``
        is called after each step (progress bars)."""
        missing = [name for name in self.plan.inputs if name not in inputs]
        if missing:
            raise UserError(f"the {self.plan.path.value} plan needs input(s) {', '.join(missing)}")
        keep = keep or step_outputs(self.plan.steps[-1])
        store: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
        last_use = self.plan.last_uses()
        for index, step in enumerate(self.plan.steps):
            produced = self._run_stage(step, store) if isinstance(step, Stage) else step.apply(store)
            store.update(produced)
            if observer is not None:
                for name, tensor in produced.items():
                    observer(name, tensor)
            for name in [n for n in store if last_use.get(n, -1) == index and n not in keep]:
                del store[name]
            if on_step is not None:
                on_step()
        return {name: store[name] for name in keep}

    def _output_length(self, stage: Stage, store: Mapping[str, np.ndarray]) -> int:
        lengths = {p.name: p.geometry.output_length(store[p.name].shape[-1]) for p in stage.inputs}
        if len(set(lengths.values())) != 1:
            raise RuntimeError(f"stage {stage.name}: inputs imply different lengths {lengths}")
        length = next(iter(lengths.values()))
        if length < 1:
            raise UserError(
                f"input too short for stage {stage.name}: it produces no frame "
                f"(the model needs at least one full encoder window of samples)"
            )
        return length

    def _run_stage(self, stage: Stage, store: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        length = self._output_length(stage, store)
        n_tiles = math.ceil(length / self.tile_w)
        groups = max(store[p.name].shape[0] for p in stage.inputs)
        batch = {}
        for port in stage.inputs:
            tiles = gather_tiles(store[port.name], port.geometry, self.tile_w, n_tiles)
            if tiles.shape[0] != groups * n_tiles:  # a per-utterance tensor meets per-source ones
                tiles = np.tile(tiles, (groups, 1, 1, 1))
            batch[port.name] = tiles
        outputs = self.backend.run_stage(stage, batch)
        self.stage_batches[stage.name] = self.stage_batches.get(stage.name, 0) + 1
        return {port.name: scatter_tiles(outputs[port.name], groups, length) for port in stage.outputs}
