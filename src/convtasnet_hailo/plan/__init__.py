"""The plan IR: a ConvTasNet decomposed into fixed-shape stages (ops: ``ops.py``) and the host
steps between them, with the tensor names every report uses. The single source of truth for
export, compile, the runtime, every backend and parity.

This package is the plan's facade: ``from convtasnet_hailo.plan import build_plan, PlanOptions``.
Names are imported on first use, so that the device side (``stage_plan``, ``options``) never
imports torch through here; ``builder`` (which reads a torch model) is imported only for its own."""

from __future__ import annotations

import importlib

#: Public name -> the module that owns it.
_FACADE = {
    "build_plan": "builder",
    "build_window_plan": "builder",
    "float_backend_options": "builder",
    "PlanOptions": "options",
    "PlanPath": "options",
    "PlanRecord": "options",
    "DEFAULT_MAX_WIDTH": "options",
    "FLOAT_ONLY_FLAGS": "options",
    "refuse_float_only": "options",
    "StagePlan": "stage_plan",
    "Step": "stage_plan",
    "step_inputs": "stage_plan",
    "step_outputs": "stage_plan",
    "is_contract_tensor": "names",
}
__all__ = sorted(_FACADE)


def __getattr__(name: str):
    if name in _FACADE:
        return getattr(importlib.import_module(f".{_FACADE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
