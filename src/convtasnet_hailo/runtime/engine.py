"""The engine's constructors for code that runs stages outside a :class:`~.run.Run` (calibration,
the noise study, probes, benchmarks): a backend by name and a stitched executor over a plan. With
``run.py`` these are the only places that open backends or build executors; an import-linter
contract keeps everything outside ``runtime/`` from importing the registry or the executors."""

from __future__ import annotations

from ..backends.base import Backend
from ..backends.registry import load_backend
from ..plan.stage_plan import StagePlan
from .executor import StitchedExecutor


def open_backend_named(name: str, **options) -> Backend:
    """The registered backend ``name`` opened with ``options`` (refused in one line when unknown
    or not installed here)."""
    return load_backend(name, **options)


def stitched_executor(plan: StagePlan, backend: Backend, tile_w: int, clock=None) -> StitchedExecutor:
    """The stitched executor running every stage of ``plan`` on ``backend`` at tile width ``tile_w``
    (``clock``: a timer wrapper's clock, for benchmarks)."""
    return StitchedExecutor(plan, backend, tile_w, clock)


def window_executor(plan: StagePlan, backend: Backend, hop: int):
    """The receptive-field window executor running ``plan`` on ``backend`` hop by hop (``hop``
    samples per push): calibration records the windows a stream gives each span."""
    from .window_executor import WindowStreamingExecutor

    return WindowStreamingExecutor(plan, backend, hop)


def host_clock():
    """A fresh clock of host seconds by kind, for :func:`stitched_executor`'s ``clock`` (bench)."""
    from .executor import HostClock

    return HostClock()
