"""`plan`: the stage plan and what it costs on the device (``plan.report``), or with ``hop_ms``
the streaming candidates for a causal model and the one `stream` would choose
(``runtime.stream_choice``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..files import write_text_atomically
from ..guard import check_run_files
from ..model.source import ModelSource
from ..plan.cost_model import DeviceModel
from ..plan.options import PlanOptions, PlanPath
from ..plan.packing import PackingRequest
from ..plan.passes.rf_windows import DEFAULT_MAX_WIDTH
from ..plan.report import PlanSummary
from ..runtime.stream_choice import StreamChoice

log = logging.getLogger(__name__)

#: The files ``--out DIR`` gets.
PLAN_JSON, PLAN_PNG = "plan.json", "plan.png"


@dataclasses.dataclass(frozen=True)
class Request:
    """`plan` of ``source``'s ``path`` at ``tile_w`` with ``packing``; ``out`` (a folder) gets
    plan.json and plan.png, ``json_path``/``png_path`` name the files instead (the deprecated
    --json/--png; the PNG goes beside the JSON unless named). With ``hop_ms`` the streaming
    candidates instead (``plan_kind``, ``max_width``, priced on ``device``)."""

    source: ModelSource
    layout: PlanOptions
    path: PlanPath = PlanPath.FULL_CHAIN
    tile_w: int = 256
    packing: PackingRequest = PackingRequest()
    out: Path | None = None
    json_path: Path | None = None
    png_path: Path | None = None
    hop_ms: float | None = None
    plan_kind: str = "auto"
    max_width: int = DEFAULT_MAX_WIDTH
    device: DeviceModel = DeviceModel()

    def outputs(self) -> tuple[Path | None, Path | None]:
        """(JSON, PNG) to write: --json/--png as given, else in --out, the PNG beside the JSON."""
        json_path = self.json_path or (self.out / PLAN_JSON if self.out is not None else None)
        png_path = self.png_path or (self.out / PLAN_PNG if self.out is not None else None)
        if json_path is not None and png_path is None:
            png_path = json_path.with_suffix(".png")
        return json_path, png_path


@dataclasses.dataclass(frozen=True)
class PlanResult:
    """The plan's summary and where its records go, or (``hop_ms``) the streaming choice."""

    summary: PlanSummary | None = None
    json_path: Path | None = None
    png_path: Path | None = None
    choice: StreamChoice | None = None
    choice_header: str = ""
    exit_status: int = 0
    #: Where the model came from (``ModelSource.to_json``), named in the summary and the record.
    model: dict = dataclasses.field(default_factory=dict)
    #: The cost model that priced the streaming choice (its link, the default's source), or None.
    device: DeviceModel | None = None

    def lines(self) -> list[str]:
        from ..plan.report import format_table
        from ..runtime.stream_choice import format_choice

        named = f"model: {self.model['model_source']}" if self.model.get("model_source") else None
        written = [f"wrote {p}" for p in (self.json_path, self.png_path) if p is not None]
        if self.choice is not None:
            body = [self.choice_header, format_choice(self.choice)]
        else:
            body = [format_table(self.summary)]
        return ([named] if named else []) + body + written

    def to_json(self) -> dict:
        record = self.choice.to_json() if self.choice is not None else self.summary.to_json()
        priced = {"device_model": self.device.describe()} if self.device is not None else {}
        return {**self.model, **priced, **record}


def run(request: Request) -> PlanResult:
    if request.hop_ms is not None:
        return _streaming_choice(request)
    from ..plan import build_plan
    from ..plan.report import summarize_plan

    json_path, png_path = request.outputs()
    check_run_files(request.source.given(), [json_path, png_path])
    plan = build_plan(request.source.model, request.layout, request.path)
    packing = request.packing.packing([s.name for s in plan.stages])
    summary = summarize_plan(plan, request.tile_w, packing)
    for problem in summary.limit_violations:  # said, not failed: the report itself succeeds
        log.warning(f"plan: {problem}")
    return PlanResult(summary, json_path, png_path, model=request.source.to_json())


def _streaming_choice(request: Request) -> PlanResult:
    """`plan --hop-ms H`: the streaming candidates for a causal model and the choice."""
    from ..plan.packing import HAILORT_5_ARCHS
    from ..plan.passes.rf_windows import hop_samples
    from ..runtime.stream_choice import check_chosen_streamable, choose_stream_plan

    model, device, hop_ms = request.source.model, request.device, request.hop_ms
    hop = hop_samples(hop_ms, model.config.sample_rate, model.config.stride)
    choice = choose_stream_plan(
        model,
        hop,
        device,
        request.layout,
        request.plan_kind,
        request.max_width,
        request.packing.hw_arch in HAILORT_5_ARCHS,
    )
    check_chosen_streamable(choice)
    json_path, _ = request.outputs()
    check_run_files(request.source.given(), [json_path])
    header = (
        f"streaming plans for hops of {hop} samples ({hop_ms:g} ms) on {device.device} behind a Pi 5 PCIe "
        f"{device.link} x1:"
    )
    return PlanResult(
        json_path=json_path, choice=choice, choice_header=header, model=request.source.to_json(), device=device
    )


def write(result: PlanResult) -> None:
    """plan.json and, for a stage plan, the figure (a streaming choice has its record only)."""
    from ..plan.report import plot_plan

    if result.json_path is not None:
        write_text_atomically(result.json_path, json.dumps(result.to_json(), indent=1) + "\n")
    if result.png_path is not None and result.summary is not None:
        plot_plan(result.png_path, result.summary)
