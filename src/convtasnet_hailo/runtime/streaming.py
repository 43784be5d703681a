"""Opening a streaming run: the plan chosen for the hop (:mod:`.stream_choice`), the run opened on
it, and its streaming executor. The `stream` command and the Python API's streaming separator
both open theirs here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..model.source import ModelSource
from ..plan.cost_model import DeviceModel, stream_prediction
from ..plan.options import DEFAULT_MAX_WIDTH, PlanOptions
from ..plan.packing import ExecutionMode
from ..plan.passes.rf_windows import hop_samples
from .backend_setup import BackendOptions
from .run import Run, exported_spec, open_run
from .spec import RunSpec
from .stream_choice import StreamChoice, choose_among, choose_stream_plan, exported_stream_plan
from .stream_executor import StreamingExecutor, check_streamable


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One streaming run: the model, hops of ``hop_ms``, the backend, and how the plan is chosen
    (``plan_kind``: auto, per-hop or rf-windows; ``device``: the cost model that prices them).
    ``scratch``: where onnxruntime exports the chosen plan (None: a temporary folder the run
    removes when closed)."""

    source: ModelSource
    hop_ms: float
    backend: BackendOptions = BackendOptions()
    device: DeviceModel = DeviceModel()
    options: PlanOptions = PlanOptions()
    plan_kind: str = "auto"
    max_width: int = DEFAULT_MAX_WIDTH
    scratch: Path | None = None


def open_stream(spec: StreamSpec) -> tuple[Run, StreamingExecutor, StreamChoice]:
    """The run of the cheapest fitting plan, its streaming executor, and the choice (as the HEFs
    run it, when a device backend reads their mode)."""
    config = spec.source.config
    hop = hop_samples(spec.hop_ms, config.sample_rate, config.stride)
    if spec.source.model is None:  # an export without its checkpoint: its own plan
        exported, plan = exported_spec(RunSpec(source=spec.source, backend=spec.backend))
        choice = choose_among(exported_stream_plan(plan, exported.tile_w, hop, spec.plan_kind), hop, spec.device)
    else:
        choice = choose_stream_plan(spec.source.model, hop, spec.device, spec.options, spec.plan_kind, spec.max_width)
    check_streamable(choice.plan)  # before any export
    run_spec = RunSpec(
        source=spec.source,
        options=choice.plan.options,
        backend=spec.backend,
        tile_w=choice.plan.rf_window or hop // config.stride,
        scratch=spec.scratch,
    )
    run = open_run(run_spec, plan=choice.plan)
    executor = run.streamer(hop)  # prepares the backend: a device backend reads its HEFs' mode
    read = getattr(run.backend, "mode", None)  # and runs the mode they were built for
    if isinstance(read, ExecutionMode) and read is not choice.mode:
        choice = dataclasses.replace(
            choice,
            mode=read,
            prediction=stream_prediction(choice.plan, hop, spec.device, read),
            reason=f"{choice.kind} as the HEFs in --hef-dir run it ({read.value})",
        )
    return run, executor, choice
