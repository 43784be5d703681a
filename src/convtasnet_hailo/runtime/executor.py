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
import functools
import math
import time
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import UserError
from ..model.config import NormType
from ..plan.host_steps import GlnFold, Normalize
from ..plan.stage_plan import StagePlan, step_outputs
from ..plan.stages import InputKind, Stage
from .host_forms import run_tiled
from .tensors import (
    PerChannelAffine,
    ScratchBuffers,
    Stored,
    TiledTensor,
    check_tile_width,
    edges_from_neighbours,
    gather_tiles,
    per_tile_batch,
    valid_mask,
    whole,
)

Observer = Callable[[str, np.ndarray], None]


class HostClock:
    """Seconds of host work by kind, added up over runs (bench): ``gln_statistics``, ``gather``
    (tile windows cut for a stage), ``gather+gln_affine`` (the same, applying a pending gLN
    affine), ``stage_outputs`` (taking the backend's tiles), ``whole_tensors`` (for the observer
    and the caller) and each other host step by its type (with any whole tensors it needs)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._kind, self._started = "", 0.0

    def __call__(self, kind: str) -> HostClock:
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

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        observer: Observer | None = None,
        keep: tuple[str, ...] = (),
        on_step: Callable[[], None] | None = None,
    ) -> dict[str, np.ndarray]:
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
            return run_tiled(step, store, dying)

    def _output_length(self, stage: Stage, store: Mapping[str, Stored]) -> int:
        lengths = {
            p.name: p.geometry.output_length(store[p.tensor].shape[-1])
            for p in stage.inputs
            if p.kind is InputKind.TILES
        }
        if len(set(lengths.values())) != 1:
            raise RuntimeError(f"stage {stage.name}: inputs imply different lengths {lengths}")
        length = next(iter(lengths.values()))
        if length < 1:
            raise UserError(
                f"input too short for stage {stage.name}: it produces no frame "
                f"(the model needs at least one full encoder window of samples)"
            )
        return length

    def _input_batch(
        self, stage: Stage, slot: int, store: Mapping[str, Stored], n_tiles: int, groups: int
    ) -> np.ndarray:
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
                return edges_from_neighbours(
                    edges, groups, port.kind is InputKind.LEFT_EDGE, source.shape[-1], self.tile_w, empty
                )
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
        groups = max(
            store[p.tensor].shape[0]
            for p in stage.inputs  # edges are per tile: (batch, ...)
            if p.kind in (InputKind.TILES, InputKind.PER_TILE)
        )
        batch = {
            port.name: self._input_batch(stage, slot, store, n_tiles, groups) for slot, port in enumerate(stage.inputs)
        }
        outputs = self.backend.run_stage(stage, batch)
        self.stage_batches[stage.name] = self.stage_batches.get(stage.name, 0) + 1
        with self.clock("stage_outputs"):
            return {
                port.name: np.asarray(outputs[port.name], np.float32)
                if port.per_tile or port.edge is not None
                else TiledTensor.from_backend(outputs[port.name], groups, length)
                for port in stage.outputs
            }
