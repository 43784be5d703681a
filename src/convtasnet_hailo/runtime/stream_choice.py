"""Which streaming plan, and why: on the device backends by the cost model, the per-hop plan or
receptive-field windows (``plan.rf_windows``) in each execution mode HailoRT allows
(``plan.packing``); on the CPU backends (``CPU_BACKENDS``) the stateful graph (``export.stateful``:
one onnxruntime call per hop, the history kept as tensors), where the model or export has one.

Every candidate is priced per hop by ``plan.cost_model.stream_prediction`` (calls, recomputed
MACs, bytes, network groups entered, device time, end-to-end latency). A candidate fits when its
network groups fit the device at once (reconfiguring every hop is not real time). The cheapest
fitting one wins; ``activated_packs`` is a candidate on HailoRT 4 only and needs its packs to
compile single-context, which only the compiled HEF tells (said with the choice).
"""

from __future__ import annotations

import dataclasses
import enum

from ..errors import UserError
from ..plan.cost_model import DeviceModel, stream_prediction
from ..plan.options import PlanOptions, PlanPath
from ..plan.packing import ExecutionMode
from ..plan.passes.rf_windows import DEFAULT_MAX_WIDTH, check_rf_windows
from ..plan.stage_plan import StagePlan

PLAN_KINDS = ("auto", "per-hop", "rf-windows", "stateful")
DEFAULT_LAYOUT = PlanOptions()
#: Backends that compute on this machine's CPU, where the stateful graph is the plan to run (the
#: Hailo backends, and hailo_quant's model of the device's arithmetic, run the device's plan).
CPU_BACKENDS = ("torch_proxy", "onnxruntime")
STATEFUL = "stateful"


class ChoiceBasis(enum.Enum):
    """What decided the plan: ``--plan`` itself, the backend (a CPU runs the stateful graph), or
    the device cost model (the least predicted device time per hop)."""

    REQUESTED = "requested"
    CPU_BACKEND = "cpu_backend"
    DEVICE_COST_MODEL = "device_cost_model"


@dataclasses.dataclass(frozen=True)
class StreamChoice:
    """The plan a stream runs (``kind``: per_hop, rf_windows or stateful), what decided it
    (``basis``) and why (``reason``). ``plan``, ``mode``, ``prediction`` and ``candidates`` are
    the device's: the stage plan the chip would run and the cost model's prices, also when this
    machine's CPU runs the stateful graph instead (``device_kind`` names the chip's plan)."""

    plan: StagePlan
    kind: str
    mode: ExecutionMode
    prediction: dict
    candidates: tuple[dict, ...]
    reason: str
    basis: ChoiceBasis = ChoiceBasis.DEVICE_COST_MODEL
    device_kind: str = ""

    def to_json(self) -> dict:
        return {
            "plan": self.kind,
            "chosen_by": self.basis.value,
            "device_plan": self.device_kind or self.kind,
            "execution_mode": self.mode.value,
            "reason": self.reason,
            "candidates": list(self.candidates),
        }


def _plans(model, hop_frames: int, layout: PlanOptions, requested: str, max_width: int) -> dict[str, StagePlan]:
    from ..plan import build_plan, build_window_plan  # from the model: torch
    from .stream_executor import check_streamable

    per_hop = build_plan(model, layout, PlanPath.FULL_CHAIN)
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


def choose_stream_plan(
    model,
    hop: int,
    device: DeviceModel,
    layout: PlanOptions = DEFAULT_LAYOUT,
    requested: str = "auto",
    max_width: int = DEFAULT_MAX_WIDTH,
    hailort_5: bool = False,
) -> StreamChoice:
    """The cheapest streaming plan for hops of ``hop`` samples that fits the device (a device
    plan: the stateful graph is chosen by ``for_backend``)."""
    if requested not in PLAN_KINDS:
        raise UserError(f"--plan {requested!r}: choose {', '.join(PLAN_KINDS)}")
    if requested == STATEFUL:
        raise UserError(
            "--plan stateful: the cost model prices the device's plans (per-hop, rf-windows); the stateful "
            "graph runs on a CPU: `stream --plan stateful`"
        )
    return choose_among(_plans(model, hop // model.config.stride, layout, requested, max_width), hop, device, hailort_5)


def exported_stream_plan(plan: StagePlan, tile_w: int, hop: int, requested: str) -> dict[str, StagePlan]:
    """The one plan an export holds, as a streaming candidate for hops of ``hop`` samples (the
    export fixes it: per-hop stages at hop / S frames, or receptive-field spans for that hop)."""
    kind = "rf_windows" if plan.rf_window else "per_hop"
    frames = hop // plan.config.stride
    made_for = plan.options.rf_hop_frames if plan.rf_window else None
    if requested not in ("auto", kind.replace("_", "-")):
        raise UserError(
            f"--plan {requested}: the export holds the {kind.replace('_', '-')} plan; drop --plan or re-export"
        )
    if made_for is None and tile_w != frames:
        raise UserError(
            f"the export's stages run tiles of {tile_w} frames, a hop of {tile_w * plan.config.stride} "
            f"samples, not {hop}: pass --hop-ms "
            f"{1e3 * tile_w * plan.config.stride / plan.config.sample_rate:g}"
            f" or re-export with --tile-w {frames}"
        )
    if made_for is not None and made_for != frames:
        raise UserError(
            f"the export's receptive-field spans are for hops of {made_for * plan.config.stride} samples, "
            f"not {hop}: pass --hop-ms {1e3 * made_for * plan.config.stride / plan.config.sample_rate:g}"
        )
    return {kind: plan}


def choose_among(plans: dict[str, StagePlan], hop: int, device: DeviceModel, hailort_5: bool = False) -> StreamChoice:
    """The cheapest of ``plans`` (kind -> plan) in each execution mode that fits the device."""
    modes = (ExecutionMode.SCHEDULED_GROUPS,) if hailort_5 else tuple(ExecutionMode)
    rows = []
    for kind, plan in plans.items():
        for mode in modes:
            rows.append((kind, mode, stream_prediction(plan, hop, device, mode)))
    fitting = [r for r in rows if r[2]["fits_device"]] or rows
    kind, mode, prediction = min(fitting, key=lambda r: r[2]["device_ms_per_hop"])
    candidates = tuple(
        {
            "plan": k,
            "execution_mode": m.value,
            "calls_per_hop": p["calls_per_hop"],
            "macs_per_hop": p["macs_per_hop"],
            "recomputed_macs_per_hop": p["recomputed_macs_per_hop"],
            "boundary_bytes_per_hop": round(p["boundary_bytes_per_hop"]),
            "network_groups": p["network_groups"],
            "configure_windows": p["configure_windows"],
            "network_group_switches_per_hop": p["network_group_switches_per_hop"],
            "activations_per_hop": p["activations_per_hop"],
            "device_ms_per_hop": p["device_ms_per_hop"],
            "end_to_end_latency_ms": p["end_to_end_latency_ms"],
            "fits_device": p["fits_device"],
        }
        for k, m, p in rows
    )
    reason = (
        f"{kind} in {mode.value}: {prediction['device_ms_per_hop']:.2f} ms device time per hop "
        f"({prediction['calls_per_hop']} calls), the least of {len(rows)} candidate(s)"
        + (
            "; activated_packs needs its packs to compile single-context (the HEF says)"
            if mode is ExecutionMode.ACTIVATED_PACKS
            else ""
        )
    )
    return StreamChoice(plans[kind], kind, mode, prediction, candidates, reason)


def for_backend(choice: StreamChoice, requested: str, backend: str, no_stateful: str | None) -> StreamChoice:
    """The stream's plan from the device's ``choice``: ``--plan stateful``, or ``auto`` on a CPU
    backend, runs the stateful graph unless ``no_stateful`` says why it cannot (an export without
    one); otherwise the device's choice, as ``requested`` or the cost model made it."""
    device = dataclasses.replace(choice, device_kind=choice.kind)
    if requested == STATEFUL and backend not in CPU_BACKENDS:
        raise UserError(
            f"--plan stateful runs the stateful graph on onnxruntime on this CPU, not on {backend}: pass "
            f"--backend {' or '.join(CPU_BACKENDS)}, or --plan per-hop/rf-windows for the device"
        )
    if requested == STATEFUL and no_stateful is not None:
        raise UserError(f"--plan stateful: {no_stateful}")
    if requested not in ("auto", STATEFUL):
        return dataclasses.replace(device, basis=ChoiceBasis.REQUESTED)
    if backend not in CPU_BACKENDS:
        return device
    if no_stateful is not None:
        return dataclasses.replace(
            device,
            basis=ChoiceBasis.CPU_BACKEND,
            reason=f"{choice.kind}: {no_stateful}, so the CPU runs the export's own plan",
        )
    why = "--plan stateful" if requested == STATEFUL else f"backend {backend} computes on this CPU"
    return dataclasses.replace(
        device,
        kind=STATEFUL,
        basis=ChoiceBasis.REQUESTED if requested == STATEFUL else ChoiceBasis.CPU_BACKEND,
        reason=f"stateful graph on onnxruntime ({why}: one call per hop, the history kept as tensors); "
        f"on the chip: {choice.reason}",
    )


def format_choice(choice: StreamChoice) -> str:
    lines = [
        f"{'plan':11s} {'mode':17s} {'calls':>5s} {'MACs/hop':>12s} {'recomputed':>12s} {'bytes/hop':>10s} "
        f"{'groups':>6s} {'entered':>7s} {'device ms':>9s} {'latency ms':>10s}"
    ]
    for c in choice.candidates:
        entered = c["network_group_switches_per_hop"] + c["activations_per_hop"]
        lines.append(
            f"{c['plan']:11s} {c['execution_mode']:17s} {c['calls_per_hop']:>5d} {c['macs_per_hop']:>12,d} "
            f"{c['recomputed_macs_per_hop']:>12,d} {c['boundary_bytes_per_hop']:>10,d} "
            f"{c['network_groups']:>6d} {entered:>7d} {c['device_ms_per_hop']:>9.2f} "
            f"{c['end_to_end_latency_ms']:>10.2f}" + ("" if c["fits_device"] else "  (does not fit)")
        )
    lines.append(f"chosen: {choice.reason}")
    return "\n".join(lines)


def check_chosen_streamable(choice: StreamChoice) -> None:
    """Refuses a chosen plan the streaming executor cannot run (``stream_executor.check_streamable``),
    for callers outside ``runtime/``."""
    from .stream_executor import check_streamable

    check_streamable(choice.plan)
