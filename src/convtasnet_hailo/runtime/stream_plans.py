"""Each streaming plan of a causal model on this machine's CPU, for timing them side by side
(``bench --stream``): the stateful graph (``export.stateful``, one onnxruntime call per hop), the
per-hop plan and the receptive-field windows (one onnxruntime call per stage per hop), each on a
given number of onnxruntime threads. Every executor takes ``push(hop samples)`` and counts its
graph or stage calls (``calls``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import UserError

#: The plans ``plan_stream`` opens, as `stream --plan` names them.
STREAM_PLANS = ("stateful", "per-hop", "rf-windows")


@dataclasses.dataclass
class PlanStream:
    """One plan's streaming executor (``push``, ``hop``) and what it opened (closed by ``close``)."""

    plan: str
    threads: int
    executor: object
    backend: object | None = None

    @property
    def calls(self) -> int:
        """Graph or stage calls so far."""
        executor = self.executor
        return executor.calls if self.plan == "stateful" else executor.stage_calls

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def applicable_plans(config) -> tuple[str, ...]:
    """The plans a model streams with: all three for a causal cLN model without a softmax mask
    (the windows' condition, ``check_rf_windows``), the stateful and per-hop plans otherwise."""
    from ..plan.passes.rf_windows import check_rf_windows

    try:
        check_rf_windows(config)
    except UserError:
        return STREAM_PLANS[:2]
    return STREAM_PLANS


def plan_stream(model, plan: str, hop: int, threads: int, scratch: Path) -> PlanStream:
    """``model`` (a causal ConvTasNet) streamed by ``plan`` in hops of ``hop`` samples on
    onnxruntime with ``threads`` intra-op threads; its graph or stages exported under ``scratch``."""
    from ..export.stateful import export_stateful
    from ..plan import PlanOptions, PlanPath, build_plan, build_window_plan
    from .engine import open_backend_named, window_executor
    from .stateful_executor import StatefulExecutor
    from .stream_executor import StreamingExecutor

    if plan not in STREAM_PLANS:
        raise UserError(f"plan {plan!r}: choose {', '.join(STREAM_PLANS)}")
    folder = scratch / f"{plan}_hop{hop}_threads{threads}"
    if plan == "stateful":
        record = export_stateful(model, hop, folder)
        return PlanStream(plan, threads, StatefulExecutor(folder / record.onnx_file, record, threads))
    backend = open_backend_named("onnxruntime", scratch=folder, threads=threads, model_info={})
    try:
        if plan == "per-hop":
            executor = StreamingExecutor(build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN), backend, hop)
        else:
            executor = window_executor(build_window_plan(model, hop // model.config.stride), backend, hop)
    except BaseException:
        backend.close()
        raise
    return PlanStream(plan, threads, executor, backend)
