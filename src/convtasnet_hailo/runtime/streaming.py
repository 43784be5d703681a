"""Opening a streaming run: the plan chosen for the hop (:mod:`.stream_choice`), the run opened on
it, and its streaming executor. The `stream` command and the Python API's streaming separator
both open theirs here. The stateful plan runs the stateful graph (``export.stateful``) on
onnxruntime: an export's own (``export --stateful``), or one exported from the checkpoint into the
run's scratch folder."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

from ..model.source import ModelSource
from ..plan.cost_model import DeviceModel, stream_prediction
from ..plan.options import DEFAULT_MAX_WIDTH, PlanOptions
from ..plan.packing import ExecutionMode
from ..plan.passes.rf_windows import hop_samples
from .backend_setup import BackendOptions
from .run import Run, exported_spec, open_run
from .spec import RunSpec
from .stateful_executor import StatefulStream
from .stream_choice import (
    STATEFUL,
    StreamChoice,
    choose_among,
    choose_stream_plan,
    exported_stream_plan,
    for_backend,
)
from .stream_executor import StreamingExecutor, check_streamable

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One streaming run: the model, hops of ``hop_ms``, the backend, and how the plan is chosen
    (``plan_kind``: auto, per-hop, rf-windows or stateful; ``device``: the cost model that prices
    the device's plans). ``scratch``: where onnxruntime exports the chosen plan, or the stateful
    graph is exported from the checkpoint (None: a temporary folder the run removes when closed)."""

    source: ModelSource
    hop_ms: float
    backend: BackendOptions = BackendOptions()
    device: DeviceModel = DeviceModel()
    options: PlanOptions = PlanOptions()
    plan_kind: str = "auto"
    max_width: int = DEFAULT_MAX_WIDTH
    scratch: Path | None = None


class StatefulRun:
    """What a stateful stream holds open: its ``spec`` (as a :class:`Run` has) and the temporary
    folder of a graph exported for it, if any (removed when closed). Close it, or use it as a
    context manager, like a :class:`Run`."""

    def __init__(self, spec: StreamSpec, temporary: Path | None = None) -> None:
        self.spec = spec
        self._temporary = temporary

    def close(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> StatefulRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _export_folder(spec: StreamSpec) -> Path | None:
    return spec.source.export_dir or spec.backend.export_dir


def _carried(spec: StreamSpec, hop: int):
    """The stateful record the export's manifest carries, or why it cannot serve hops of ``hop``
    samples (a string; None when there is no export folder)."""
    from ..export.manifest import read_manifest

    folder = _export_folder(spec)
    if folder is None:
        return None
    record = read_manifest(folder).stateful
    if record is None:
        return f"the export in {folder} holds no stateful graph (re-export with `export --stateful HOP_MS`)"
    if record.hop != hop:
        rate = spec.source.config.sample_rate
        return (
            f"the export's stateful graph is for hops of {record.hop} samples, not {hop}: pass --hop-ms "
            f"{1e3 * record.hop / rate:g}"
        )
    return record


def _device_choice(spec: StreamSpec, hop: int) -> StreamChoice:
    """The device's plan for the hop, priced by the cost model (an export's own plan without a
    checkpoint); with ``--plan stateful``, the one ``auto`` would choose for the chip."""
    requested = "auto" if spec.plan_kind == STATEFUL else spec.plan_kind
    if spec.source.model is None:  # an export without its checkpoint: its own plan
        exported, plan = exported_spec(RunSpec(source=spec.source, backend=spec.backend))
        return choose_among(exported_stream_plan(plan, exported.tile_w, hop, requested), hop, spec.device)
    return choose_stream_plan(spec.source.model, hop, spec.device, spec.options, requested, spec.max_width)


def _open_stateful(spec: StreamSpec, hop: int, carried) -> tuple[StatefulRun, StatefulStream]:
    """The stateful graph the export carries (its sha256 checked), or one exported from the
    checkpoint into ``scratch/stateful`` (a temporary folder without one)."""
    from ..export.stateful import export_stateful, stateful_file

    if carried is not None and not isinstance(carried, str):
        path = stateful_file(_export_folder(spec), carried)
        return StatefulRun(spec), StatefulStream(path, carried, spec.source.config)
    temporary = None if spec.scratch is not None else Path(tempfile.mkdtemp(prefix="convtasnet-stateful-"))
    folder = (spec.scratch or temporary) / "stateful"
    record = export_stateful(spec.source.model, hop, folder)
    log.debug("stateful graph for hops of %d samples exported to %s", hop, folder)
    return StatefulRun(spec, temporary), StatefulStream(folder / record.onnx_file, record, spec.source.config)


def open_stream(spec: StreamSpec) -> tuple[Run | StatefulRun, StreamingExecutor | StatefulStream, StreamChoice]:
    """The run of the chosen plan, its streaming executor, and the choice (as the HEFs run it,
    when a device backend reads their mode): the stateful graph on a CPU backend where the model
    or export has one, else the cheapest fitting device plan."""
    config = spec.source.config
    hop = hop_samples(spec.hop_ms, config.sample_rate, config.stride)
    carried = _carried(spec, hop)
    no_stateful = carried if isinstance(carried, str) and spec.source.model is None else None
    choice = for_backend(_device_choice(spec, hop), spec.plan_kind, spec.backend.name, no_stateful)
    check_streamable(choice.plan)  # before any export
    if choice.kind == STATEFUL:
        run, executor = _open_stateful(spec, hop, carried)
        return run, executor, choice
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
