"""Backends: one registry, one small interface (run a stage on a batch of tiles).

Importing this package registers the built-in backends; their heavy imports (torch,
onnxruntime, HailoRT) happen when a backend module is imported, so each lives in its own
module and is imported on demand by :func:`load_backend`.
"""

from __future__ import annotations

import importlib

from ..errors import UserError
from .base import Backend, backend_names, create_backend, register_backend

#: Built-in backends and the module that registers each (imported lazily).
BUILTIN_BACKENDS = {
    "torch_proxy": "convtasnet_hailo.backends.torch_proxy",
    "onnxruntime": "convtasnet_hailo.backends.onnxruntime_backend",
    "hailo_runtime": "convtasnet_hailo.backends.hailo_runtime",
    "hailo_emulator": "convtasnet_hailo.backends.hailo_emulator",
    "hailo_quant": "convtasnet_hailo.backends.hailo_quant",
}


def load_backend(name: str, **options) -> Backend:
    """Imports the module of a built-in backend if needed, then creates it."""
    module = BUILTIN_BACKENDS.get(name)
    if module is None and name not in backend_names():
        known = sorted(set(BUILTIN_BACKENDS) | set(backend_names()))
        raise UserError(f"unknown backend {name!r}; registered backends: {', '.join(known)}")
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(f"backend {name!r} cannot run here: {exc} (see `convtasnet-hailo doctor`)") from None
    return create_backend(name, **options)


__all__ = ["Backend", "BUILTIN_BACKENDS", "backend_names", "create_backend", "load_backend", "register_backend"]
