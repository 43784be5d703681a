"""Backends: one registry, one small interface (run a stage on a batch of tiles).

Importing this package registers the built-in backends; their heavy imports (torch,
onnxruntime, HailoRT) happen when a backend module is imported, so each lives in its own
module and is imported on demand by :func:`.registry.load_backend`, which only ``runtime/`` calls.
"""

from __future__ import annotations

from .base import Backend, backend_names, create_backend, register_backend

#: Built-in backends and the module that registers each (imported lazily).
BUILTIN_BACKENDS = {
    "torch_proxy": "convtasnet_hailo.backends.torch_proxy",
    "onnxruntime": "convtasnet_hailo.backends.onnxruntime_backend",
    "hailo_runtime": "convtasnet_hailo.backends.hailo_runtime",
    "hailo_emulator": "convtasnet_hailo.backends.hailo_emulator",
    "hailo_quant": "convtasnet_hailo.backends.hailo_quant",
}


__all__ = ["Backend", "BUILTIN_BACKENDS", "backend_names", "create_backend", "register_backend"]
