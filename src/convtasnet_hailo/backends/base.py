"""The one interface every backend implements, and the registry that names them."""

from __future__ import annotations

import abc
from typing import Callable, ClassVar

import numpy as np

from ..errors import UserError
from ..plan.stages import Stage


class Backend(abc.ABC):
    """Runs one stage on a batch of tiles. Never falls back to another backend: a backend that
    cannot run raises :class:`UserError` saying why."""

    name: ClassVar[str]

    def prepare(self, plan, tile_w: int) -> None:
        """Called once per executor before any stage runs (open sessions, configure HEFs)."""

    @abc.abstractmethod
    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``inputs``: port name -> (batch, C, 1, W_in) float32.
        Returns output name -> (batch, C_out, 1, W) float32."""

    def stats(self) -> dict:
        """Backend-specific measurements for the run JSON (device time, call counts)."""
        return {}

    def close(self) -> None:
        """Releases sessions/devices; the default holds nothing."""

    def __enter__(self) -> "Backend":
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
