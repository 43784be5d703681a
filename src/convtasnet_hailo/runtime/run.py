"""Opening a run: the plan built from the spec, the backend opened for it, and the executors
the commands need (an offline separator, a stitched executor, a streamer for a hop). The only
place outside ``backends/`` that opens a backend."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from ..backends.base import Backend
from ..backends.timing import StageTimer
from ..plan.stage_plan import StagePlan
from .backend_setup import open_backend
from .executor import StitchedExecutor
from .separator import StitchedSeparator
from .spec import RunSpec
from .stream_executor import StreamingExecutor, check_streamable
from .window_executor import WindowStreamingExecutor


class Run:
    """An open run: ``plan``, ``backend`` and the executors over them. Close it (or use it as a
    context manager) to release the backend and any temporary export."""

    def __init__(self, spec: RunSpec, plan: StagePlan, backend: Backend, temporary: Path | None = None) -> None:
        self.spec, self.plan, self.backend = spec, plan, backend
        self._temporary = temporary
        self._separator: StitchedSeparator | None = None

    @property
    def model(self):
        return self.spec.model

    def separator(self) -> StitchedSeparator:
        """The offline separator at the spec's tile width: (T,) -> (n_src, T)."""
        if self._separator is None:
            self._separator = StitchedSeparator(self.model, self.backend, self.spec.tile_w, self.plan)
        return self._separator

    def executor(self, tile_w: int | None = None, clock=None) -> StitchedExecutor:
        """The stitched executor over every tensor of the plan (parity, bench)."""
        return StitchedExecutor(self.plan, self.backend, tile_w or self.spec.tile_w, clock)

    def streamer(self, hop: int) -> StreamingExecutor | WindowStreamingExecutor:
        """A streaming executor taking hops of ``hop`` samples, its device calls timed
        (``backend.seconds``); receptive-field plans get the window executor."""
        check_streamable(self.plan)
        timed = StageTimer(self.backend)
        executor = (
            WindowStreamingExecutor(self.plan, timed, hop)
            if self.plan.rf_window
            else StreamingExecutor(self.plan, timed, hop)
        )
        executor.host_seconds = []
        return executor

    def close(self) -> None:
        self.backend.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exported_spec(spec: RunSpec) -> tuple[RunSpec, StagePlan]:
    """A spec whose model is an export's (no checkpoint): the export's own plan, and the spec with
    that plan's options and tile width (the export fixes them)."""
    from ..export.manifest import read_device_plan, read_manifest

    manifest = read_manifest(spec.source.export_dir)
    plan = read_device_plan(spec.source.export_dir, manifest)
    return dataclasses.replace(
        spec, options=plan.options, path=plan.path, expose_internal=plan.expose_internal, tile_w=manifest.tile_w
    ), plan


def open_run(spec: RunSpec, *, plan: StagePlan | None = None) -> Run:
    """The run ``spec`` describes. ``plan``: one already built from ``spec.options`` (stream's
    choice builds its candidates before it picks one); otherwise it is built here, or read from
    the export when the spec's model is an export's."""
    if plan is None and spec.model is None:
        spec, plan = exported_spec(spec)
    elif plan is None:
        from ..plan import build_plan  # builds from the model: torch

        plan = build_plan(spec.model, spec.options, spec.path, spec.expose_internal)
    elif plan.options != spec.options or plan.path is not spec.path:
        raise RuntimeError("open_run: the plan given was built with other options than the spec's")
    temporary = None
    scratch = spec.scratch
    if scratch is None and spec.backend.name == "onnxruntime" and spec.backend.export_dir is None:
        scratch = temporary = Path(tempfile.mkdtemp(prefix="convtasnet-run-"))
    return Run(spec, plan, open_backend(spec.backend, spec.source.to_json(), scratch), temporary)
