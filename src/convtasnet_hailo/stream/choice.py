"""Which streaming plan, by the cost model: the per-hop plan or receptive-field windows
(``plan.rf_windows``), in each execution mode HailoRT allows (``plan.packing``), and why.

Every candidate is priced per hop by ``bench.cost_model.stream_prediction`` (calls, recomputed
MACs, bytes, network groups entered, device time, end-to-end latency). A candidate fits when its
network groups fit the device at once (reconfiguring every hop is not real time). The cheapest
fitting one wins; ``activated_packs`` is a candidate on HailoRT 4 only and needs its packs to
compile single-context, which only the compiled HEF tells (said with the choice).
"""

from __future__ import annotations

import dataclasses

from ..bench.cost_model import DeviceModel, stream_prediction
from ..errors import UserError
from ..plan.builder import PlanOptions, PlanPath, StagePlan, build_window_plan
from ..plan.packing import ExecutionMode
from ..plan.rf_windows import DEFAULT_MAX_WIDTH, check_rf_windows

PLAN_KINDS = ("auto", "per-hop", "rf-windows")


@dataclasses.dataclass(frozen=True)
class StreamChoice:
    plan: StagePlan
    kind: str  # "per_hop" or "rf_windows"
    mode: ExecutionMode
    prediction: dict
    candidates: tuple[dict, ...]
    reason: str

    def to_json(self) -> dict:
        return {"plan": self.kind, "execution_mode": self.mode.value, "reason": self.reason,
                "candidates": list(self.candidates)}


def _plans(model, hop_frames: int, layout: PlanOptions, requested: str, max_width: int) -> dict[str, StagePlan]:
    from .executor import check_streamable

    per_hop = layout.build(model, PlanPath.FULL_CHAIN)
    check_streamable(per_hop)  # a model or layout that cannot stream is refused whatever the plan
    plans = {}
    if requested in ("auto", "per-hop"):
        plans["per_hop"] = per_hop
    if requested in ("auto", "rf-windows"):
        try:
            check_rf_windows(model.config)
        except UserError:
            if requested == "rf-windows":
                raise
        else:
            plans["rf_windows"] = build_window_plan(model, hop_frames, max_width)
    return plans


def choose_stream_plan(model, hop: int, device: DeviceModel, layout: PlanOptions = PlanOptions(),
                       requested: str = "auto", max_width: int = DEFAULT_MAX_WIDTH,
                       hailort_5: bool = False) -> StreamChoice:
    """The cheapest streaming plan for hops of ``hop`` samples that fits the device."""
    if requested not in PLAN_KINDS:
        raise UserError(f"--plan {requested!r}: choose {', '.join(PLAN_KINDS)}")
    modes = (ExecutionMode.SCHEDULED_GROUPS,) if hailort_5 else tuple(ExecutionMode)
    rows = []
    plans = _plans(model, hop // model.config.stride, layout, requested, max_width)
    for kind, plan in plans.items():
        for mode in modes:
            rows.append((kind, mode, stream_prediction(plan, hop, device, mode)))
    fitting = [r for r in rows if r[2]["fits_device"]] or rows
    kind, mode, prediction = min(fitting, key=lambda r: r[2]["device_ms_per_hop"])
    candidates = tuple({"plan": k, "execution_mode": m.value, "calls_per_hop": p["calls_per_hop"],
                        "macs_per_hop": p["macs_per_hop"], "recomputed_macs_per_hop": p["recomputed_macs_per_hop"],
                        "boundary_bytes_per_hop": round(p["boundary_bytes_per_hop"]),
                        "network_groups": p["network_groups"], "configure_windows": p["configure_windows"],
                        "network_group_switches_per_hop": p["network_group_switches_per_hop"],
                        "activations_per_hop": p["activations_per_hop"], "device_ms_per_hop": p["device_ms_per_hop"],
                        "end_to_end_latency_ms": p["end_to_end_latency_ms"], "fits_device": p["fits_device"]}
                       for k, m, p in rows)
    reason = (f"{kind} in {mode.value}: {prediction['device_ms_per_hop']:.2f} ms device time per hop "
              f"({prediction['calls_per_hop']} calls), the least of {len(rows)} candidate(s)"
              + ("; activated_packs needs its packs to compile single-context (the HEF says)"
                 if mode is ExecutionMode.ACTIVATED_PACKS else ""))
    return StreamChoice(plans[kind], kind, mode, prediction, candidates, reason)


def format_choice(choice: StreamChoice) -> str:
    lines = [f"{'plan':11s} {'mode':17s} {'calls':>5s} {'MACs/hop':>12s} {'recomputed':>12s} {'bytes/hop':>10s} "
             f"{'groups':>6s} {'entered':>7s} {'device ms':>9s} {'latency ms':>10s}"]
    for c in choice.candidates:
        entered = c["network_group_switches_per_hop"] + c["activations_per_hop"]
        lines.append(f"{c['plan']:11s} {c['execution_mode']:17s} {c['calls_per_hop']:>5d} {c['macs_per_hop']:>12,d} "
                     f"{c['recomputed_macs_per_hop']:>12,d} {c['boundary_bytes_per_hop']:>10,d} "
                     f"{c['network_groups']:>6d} {entered:>7d} {c['device_ms_per_hop']:>9.2f} "
                     f"{c['end_to_end_latency_ms']:>10.2f}" + ("" if c["fits_device"] else "  (does not fit)"))
    lines.append(f"chosen: {choice.reason}")
    return "\n".join(lines)


def stream_choice_command(model, hop_ms: float, layout: PlanOptions, device: DeviceModel, requested: str = "auto",
                          max_width: int = DEFAULT_MAX_WIDTH, hw_arch: str = "hailo8", report=print) -> int:
    """`plan --hop-ms H`: the streaming candidates for a causal model and the choice."""
    from ..plan.packing import HAILORT_5_ARCHS
    from .executor import check_streamable
    from ..plan.rf_windows import hop_samples

    config = model.config
    hop = hop_samples(hop_ms, config.sample_rate, config.stride)
    choice = choose_stream_plan(model, hop, device, layout, requested, max_width, hw_arch in HAILORT_5_ARCHS)
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
        return stream_choice_command(request.source.model, request.hop_ms, request.layout, request.device,
                                     request.plan_kind, request.max_width, request.packing.hw_arch)
    from ..plan.report import plan_command

    plan = request.layout.build(request.source.model, request.path)
    packing = request.packing.packing([s.name for s in plan.stages])
    return plan_command(plan, request.tile_w, packing, request.json_path, request.png_path,
                        given=request.source.given())
