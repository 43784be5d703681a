"""The one interface every backend implements, and the registry that names them."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from ..errors import UserError
from ..plan.stages import Stage


class Backend(abc.ABC):
    """The whole contract between the stitched executor and a backend.

    - **What it runs**: one :class:`Stage` of the plan on a batch of tiles (``run_stage``).
    - **Batch layout**: every input port arrives as float32 ``(batch, C, 1, W_in)`` with
      ``W_in = port.width(tile_w)`` (the tile plus its halo; 1 for a per-tile input); the batch is
      group-major: index ``g * n_tiles + t`` is tile ``t`` of group ``g`` (groups: 1, or one per
      source). Every output comes back float32 ``(batch, C_out, 1, port.width(tile_w))`` (tile_w,
      or 1 per tile) in the same order.
    - **Ownership**: inputs are read-only and not kept after the call (a batch may be a stage
      output the executor still holds); outputs belong to the caller, fresh arrays that no later
      call reuses (the executor keeps them as they are).
    - **Preparation**: ``prepare(plan, tile_w)`` is called by the executor; the base class calls
      the backend's ``_prepare`` once per (plan, tile width) and again only when either changes
      (open sessions, configure HEFs, check artifacts against the plan). What preparation makes
      for the plan (onnxruntime's export) goes only into the folder the backend was given.
    - **Arithmetic**: ``quantized`` is False for float32 backends, judged by the normwise
      contract; True for backends computing in the device's integers, judged by SQNR per stage
      (``tolerances.py``).
    - **Failure**: a backend that cannot run raises :class:`UserError` naming the stage and the
      fix. It never falls back to another backend.
    - **Measurements**: ``stats()`` goes into the run JSON (device time, calls, reconfigurations).
    """

    name: ClassVar[str]
    #: Computes in integers (judged by SQNR) rather than float32 (judged by the contract).
    quantized: bool = False

    _prepared_for: tuple | None = None

    def prepare(self, plan, tile_w: int) -> None:
        """Prepares for ``plan`` at ``tile_w`` unless already prepared for the same stages of the
        same model at that width (plans rebuilt from one model share its config object)."""
        key = (plan.config, tuple((stage.name, stage.reads, stage.writes) for stage in plan.stages), tile_w)
        done = self._prepared_for
        if done is not None and done[0] is key[0] and done[1:] == key[1:]:
            return
        self._prepare(plan, tile_w)
        self._prepared_for = key

    def _prepare(self, plan, tile_w: int) -> None:  # noqa: B027  (a hook; most backends need nothing)
        """Backend-specific preparation (default: nothing to do)."""

    @abc.abstractmethod
    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``inputs``: port name -> (batch, C, 1, W_in) float32 (layout above).
        Returns output name -> (batch, C_out, 1, tile_w) float32."""

    def stats(self) -> dict:
        """Backend-specific measurements for the run JSON (device time, call counts)."""
        return {}

    def close(self) -> None:
        """Releases sessions/devices and forgets the preparation."""
        self._prepared_for = None
        self._close()

    def _close(self) -> None:  # noqa: B027  (a hook; most backends hold nothing)
        """Backend-specific release (default: nothing held)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


BackendFactory = Callable[..., Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Class decorator adding a backend to the registry under ``name``."""

    def decorate(factory: BackendFactory) -> BackendFactory:
        if name in _REGISTRY:
            raise RuntimeError(f"backend {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorate


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(name: str, **options) -> Backend:
    """Makes the backend registered as ``name``; unknown names list the registered ones."""
    if name not in _REGISTRY:
        raise UserError(f"unknown backend {name!r}; registered backends: {', '.join(backend_names())}")
    return _REGISTRY[name](**options)
