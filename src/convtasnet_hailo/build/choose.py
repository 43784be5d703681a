"""Step 1, choose: the tile width (job ``separate``) or the streaming plan for the hop (job
``stream``) by the device cost model (``plan.cost_model``) for the chip and PCIe link, among the
candidates within the check limits (``export.hailo_rules.CheckLimits``: conv output width) and the
runtime limits (``plan.report.PlanSummary.limit_violations``). Every candidate is kept with its
price and why it lost or won."""

from __future__ import annotations

import dataclasses
import logging

from ..errors import UserError
from ..export.hailo_rules import CheckLimits
from ..plan.cost_model import CANDIDATE_TILE_WIDTHS, DeviceModel
from ..plan.options import PlanOptions
from ..plan.packing import PackingRequest
from .record import BuildSettings

log = logging.getLogger(__name__)

#: The utterance length the separate job's candidates are priced for (seconds of audio).
UTTERANCE_S = 10.0


@dataclasses.dataclass(frozen=True)
class Choice:
    """What the export is made with: ``tile_w`` (the stages' tile width; for ``stream`` the hop's
    frames or the receptive-field window), ``rf_hop_ms`` (an rf-windows export), the streaming plan
    (``stream_plan``: per-hop or rf-windows) and ``execution_mode``; the device the prices are for,
    every candidate (dicts), why the winner won, and the winner's prediction."""

    job: str
    tile_w: int | None
    rf_hop_ms: float | None
    stream_plan: str | None
    execution_mode: str
    device: dict
    candidates: tuple[dict, ...]
    reason: str
    prediction: dict
    layout: dict

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "candidates": list(self.candidates)}

    def headline(self) -> str:
        return self.reason


def device_model(settings: BuildSettings) -> DeviceModel:
    return DeviceModel(settings.hw_arch, settings.link)


def choose(model, settings: BuildSettings, limits: CheckLimits) -> Choice:
    """The separate job's tile width or the stream job's plan (module docstring)."""
    if settings.job == "stream":
        return _choose_stream(model, settings, limits)
    return _choose_tile(model, settings, limits)


def _tile_candidate(plan, tile_w: int, settings: BuildSettings, limits: CheckLimits) -> dict:
    """One tile width priced for an utterance of ``UTTERANCE_S``, with the limits it breaks."""
    from ..plan.cost_model import predict
    from ..plan.report import summarize_plan

    packing = PackingRequest(hw_arch=settings.hw_arch).packing([s.name for s in plan.stages])
    summary = summarize_plan(plan, tile_w, packing)
    problems = list(summary.limit_violations)
    if limits.max_width is not None and tile_w > limits.max_width:
        problems.append(f"tile width {tile_w} over the checked conv output width {limits.max_width}")
    row = predict(summary.facts, UTTERANCE_S, device_model(settings))
    return {
        "tile_w": tile_w,
        "execution_mode": row["execution_mode"],
        "device_s": row["device_s"],
        "rtf": row["rtf"],
        "compute_s": row["compute_s"],
        "transfer_s": row["transfer_s"],
        "overhead_s": row["overhead_s"],
        "calls": row["calls"],
        "fits": not problems,
        "problems": problems,
    }


def _choose_tile(model, settings: BuildSettings, limits: CheckLimits) -> Choice:
    from ..plan import build_plan
    from ..plan.options import PlanPath

    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    rows = [_tile_candidate(plan, w, settings, limits) for w in CANDIDATE_TILE_WIDTHS]
    fitting = [r for r in rows if r["fits"]]
    if not fitting:
        raise UserError(
            f"no tile width of {', '.join(map(str, CANDIDATE_TILE_WIDTHS))} fits the limits "
            f"({rows[0]['problems'][0]}); pass a larger --max-width"
        )
    best = min(fitting, key=lambda r: r["device_s"])
    for row in rows:
        row["why"] = _tile_why(row, best)
    device = device_model(settings)
    reason = (
        f"tile width {best['tile_w']}: {best['device_s'] * 1e3:.1f} ms predicted device time for {UTTERANCE_S:g} s "
        f"of audio on {device.device} behind PCIe {device.link} x1 (RTF {best['rtf']:.4f}), the least of "
        f"{len(fitting)} fitting candidate(s) of {len(rows)}"
    )
    prediction = {"rtf": best["rtf"], "device_s": best["device_s"], "seconds_of_audio": UTTERANCE_S}
    return Choice(
        "separate", best["tile_w"], None, None, best["execution_mode"], _device_json(device), tuple(rows), reason,
        prediction, dataclasses.asdict(PlanOptions()),
    )  # fmt: skip


def _tile_why(row: dict, best: dict) -> str:
    if row is best:
        return "chosen: the least predicted device time within the limits"
    if not row["fits"]:
        return "refused: " + "; ".join(row["problems"])
    return f"{(row['device_s'] - best['device_s']) * 1e3:+.1f} ms against the chosen"


def _device_json(device: DeviceModel) -> dict:
    described = device.describe()
    return {"device": described["device"], "link": described["link"]}


def _choose_stream(model, settings: BuildSettings, limits: CheckLimits) -> Choice:
    from ..plan.passes.rf_windows import DEFAULT_MAX_WIDTH, hop_samples
    from ..runtime.stream_choice import check_chosen_streamable, choose_stream_plan

    config = model.config
    hop = hop_samples(settings.hop_ms, config.sample_rate, config.stride)
    device = device_model(settings)
    choice = choose_stream_plan(model, hop, device, PlanOptions(), "auto", limits.max_width or DEFAULT_MAX_WIDTH)
    check_chosen_streamable(choice)
    rf = choice.kind == "rf_windows"
    tile_w = choice.plan.rf_window if rf else hop // config.stride
    prediction = {
        "device_ms_per_hop": choice.prediction["device_ms_per_hop"],
        "end_to_end_latency_ms": choice.prediction["end_to_end_latency_ms"],
        "hop_samples": hop,
    }
    rows = tuple(dict(row, why=_stream_why(row, choice)) for row in choice.candidates)
    reason = f"{choice.reason} on {device.device} behind PCIe {device.link} x1"
    return Choice(
        "stream", tile_w, settings.hop_ms if rf else None, choice.kind.replace("_", "-"), choice.mode.value,
        _device_json(device), rows, reason, prediction,
        dataclasses.asdict(PlanOptions()),
    )  # fmt: skip


def _stream_why(row: dict, choice) -> str:
    if row["plan"] == choice.kind and row["execution_mode"] == choice.mode.value:
        return "chosen: the least predicted device time per hop that fits the device"
    if not row["fits_device"]:
        return "refused: does not fit the device"
    return f"{row['device_ms_per_hop'] - choice.prediction['device_ms_per_hop']:+.2f} ms per hop against the chosen"
