"""`plan`: the stage plan report, or with ``--hop-ms`` the streaming candidates and the choice
(:mod:`convtasnet_hailo.runtime.stream_choice`)."""

from __future__ import annotations

import dataclasses

from ..runtime.stream_choice import choose_stream_plan, format_choice
from ..plan.cost_model import DeviceModel
from ..plan.options import PlanOptions, PlanPath
from ..plan.rf_windows import DEFAULT_MAX_WIDTH


def stream_choice_command(request: "PlanRequest", report=print) -> int:
    """`plan --hop-ms H`: the streaming candidates for a causal model and the choice."""
    from ..plan.packing import HAILORT_5_ARCHS
    from ..runtime.stream_executor import check_streamable
    from ..plan.rf_windows import hop_samples

    model, device, hop_ms = request.source.model, request.device, request.hop_ms
    hop = hop_samples(hop_ms, model.config.sample_rate, model.config.stride)
    choice = choose_stream_plan(model, hop, device, request.layout, request.plan_kind, request.max_width,
                                request.packing.hw_arch in HAILORT_5_ARCHS)
    check_streamable(choice.plan)
    report(f"streaming plans for hops of {hop} samples ({hop_ms:g} ms) on {device.device} behind a Pi 5 PCIe "
           f"{device.link} x1:")
    report(format_choice(choice))
    return 0


@dataclasses.dataclass(frozen=True)
class PlanRequest:
    """`plan`: the stage plan report, or with ``hop_ms`` the streaming candidates."""

    source: object
    layout: PlanOptions
    path: PlanPath
    tile_w: int
    packing: object
    json_path: object = None
    png_path: object = None
    hop_ms: float | None = None
    plan_kind: str = "auto"
    max_width: int = DEFAULT_MAX_WIDTH
    device: DeviceModel = DeviceModel()


def plan_or_streaming_command(request: PlanRequest) -> int:
    if request.hop_ms is not None:
        return stream_choice_command(request)
    from ..plan.builder import build_plan
    from ..plan.report import plan_command

    plan = build_plan(request.source.model, request.layout, request.path)
    packing = request.packing.packing([s.name for s in plan.stages])
    return plan_command(plan, request.tile_w, packing, request.json_path, request.png_path,
                        given=request.source.given())
