"""Opening a backend by name: the built-in ones are imported on first use. Only ``runtime/`` calls
this (an import-linter contract checks it): the commands and algorithms get their backends from a run."""

from __future__ import annotations

import importlib

from ..errors import UserError
from . import BUILTIN_BACKENDS
from .base import Backend, backend_names, create_backend


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
