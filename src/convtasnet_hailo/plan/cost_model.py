"""A device cost model: what a Hailo-8 / Hailo-8L behind a Raspberry Pi 5 would take for a plan.

Per utterance and per stage: compute time from the stage's MACs and the chip's TOPS at a stated
utilization, transfer time from the bytes crossing the host/device boundary (halo included) and
the PCIe link's bandwidth, a fixed overhead per inference call (batches of ``batch_size``
tiles), and the cost of entering another network group in the execution mode the packing is for
(``plan.packing``: a scheduler switch per separately invoked stage in ``scheduled_groups``, an
explicit activation per pack in ``activated_packs``), plus reconfiguring network groups when a
plan needs more than one configure window. Every parameter carries its source or is marked as an assumption,
and each can be overridden (``bench --device-param NAME=VALUE``); `bench` with ``--backend
hailo_runtime`` on a device measures the same quantities to re-fit them.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import UserError
from .facts import PlanFacts

#: name -> (value, source or "ASSUMPTION: ...")
PARAMETERS: dict[str, tuple[float, str]] = {
    "hailo8_tops": (26.0, "Hailo-8: 26 TOPS (Raspberry Pi AI HAT+ documentation; docs/hailo_facts.md, Hardware)"),
    "hailo8l_tops": (13.0, "Hailo-8L: 13 TOPS (Raspberry Pi AI HAT+ documentation; docs/hailo_facts.md, Hardware)"),
    "utilization": (0.3, "ASSUMPTION: share of peak TOPS a 1-D ConvTasNet stage reaches (no public figure)"),
    "pcie_gen2_x1_mb_s": (
        500.0,
        "PCIe Gen2 x1: 5 GT/s with 8b/10b coding = 500 MB/s per direction (PCIe 2.0 "
        "specification); the Raspberry Pi 5's certified link, the M.2 HAT's unless set by hand",
    ),
    "pcie_gen3_x1_mb_s": (
        985.0,
        "PCIe Gen3 x1: 8 GT/s with 128b/130b coding = 985 MB/s per direction (PCIe 3.0 "
        "specification); the AI HAT+ on a Pi 5 (detected at Gen 3 automatically), or dtparam=pciex1_gen=3",
    ),
    "link_efficiency": (0.8, "ASSUMPTION: share of the raw link rate left after protocol overhead and DMA setup"),
    "call_overhead_ms": (0.25, "ASSUMPTION: fixed host+driver cost of one inference call (vstream write/read)"),
    "switch_overhead_ms": (
        2.0,
        "ASSUMPTION: moving the device to another network group (the scheduler reloads the "
        "configuration: community.hailo.ai 'How the scheduler works')",
    ),
    "activation_overhead_ms": (
        2.0,
        "ASSUMPTION: deactivating one network group and activating the next by hand "
        "(scheduling NONE, execution mode activated_packs) loads its configuration like a "
        "scheduler switch (core_op/core_op.cpp activate); no public figure",
    ),
    "configure_overhead_ms": (
        20.0,
        "ASSUMPTION: configuring one network group again when a plan needs more than one "
        "configure window (VDevice.configure of its HEF; community thread: re-configuring "
        "HEFs per call is slow); no public figure",
    ),
    "bytes_per_value": (
        1.0,
        "uint8 activations at the boundary (docs/hailo_facts.md, Quantization scheme: inputs and "
        "outputs are 8-bit by default); 2 for a16 layers",
    ),
    "batch_size": (8.0, "hailo_runtime's default --batch-size"),
    "a16_slowdown": (
        7.4,
        "a 16-bit layer's compute against an 8-bit one: YOLOv8s-pose 104 FPS all 8-bit, 14 FPS all "
        "16-bit (Hailo-Application-Code-Examples, 16bit_optimization notebook; "
        "docs/hailo_facts.md, Model optimization)",
    ),
    "a16_mac_share": (
        0.0,
        "share of the MACs in 16-bit layers (a16_w16), 0..1; 0 = all 8-bit, the default; set it from `noise`'s advice",
    ),
}
DEVICES = ("hailo8l", "hailo8")
LINKS = ("gen2", "gen3")
#: The link the cost model prices unless told: the chip's usual host, the Raspberry Pi AI HAT+.
DEFAULT_LINK = "gen3"
DEFAULT_LINK_SOURCE = (
    "the Raspberry Pi AI HAT+ is detected at PCIe Gen 3 automatically (the M.2 HAT stays at the Pi 5's "
    "certified Gen 2 unless set by hand): hailo-rpi5-examples doc/install-raspberry-pi5.md; "
    "docs/hailo_facts.md, Hardware"
)


@dataclasses.dataclass(frozen=True)
class DeviceModel:
    """The chip and the Pi 5's PCIe link the model prices (``link`` default :data:`DEFAULT_LINK`,
    sourced in :data:`DEFAULT_LINK_SOURCE`), with any parameter overridden by ``values``."""

    device: str = "hailo8l"
    link: str = DEFAULT_LINK
    values: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise UserError(f"--device {self.device!r}: choose {' or '.join(DEVICES)}")
        if self.link not in LINKS:
            raise UserError(f"--link {self.link!r}: choose {' or '.join(LINKS)}")
        for name, value in self.values:
            if name not in PARAMETERS:
                raise UserError(f"--device-param {name}: unknown; known: {', '.join(PARAMETERS)}")
            if name == "a16_mac_share" and not 0 <= value <= 1:
                raise UserError(f"--device-param {name}={value}: a share, 0..1")
            if name != "a16_mac_share" and not value > 0:
                raise UserError(f"--device-param {name}={value}: must be > 0")

    def get(self, name: str) -> float:
        return dict(self.values).get(name, PARAMETERS[name][0])

    @property
    def macs_per_second(self) -> float:
        return self.get(f"{self.device}_tops") * 1e12 / 2 * self.get("utilization")  # one MAC = two ops

    @property
    def bytes_per_second(self) -> float:
        return self.get(f"pcie_{self.link}_x1_mb_s") * 1e6 * self.get("link_efficiency")

    def describe(self) -> dict:
        return {
            "device": self.device,
            "link": self.link,
            "link_default": {"link": DEFAULT_LINK, "source": DEFAULT_LINK_SOURCE},
            "parameters": {
                name: {"value": self.get(name), "source": PARAMETERS[name][1], "overridden": name in dict(self.values)}
                for name in PARAMETERS
            },
        }


def parse_overrides(items: list[str] | None) -> tuple[tuple[str, float], ...]:
    pairs = []
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            pairs.append((name.strip(), float(value)))
        except ValueError:
            raise UserError(f"--device-param {item!r}: use NAME=NUMBER, e.g. utilization=0.5") from None
    return tuple(pairs)


def predict(facts: PlanFacts, seconds: float, model: DeviceModel) -> dict:
    """Device time for ``seconds`` of audio of a plan at one tile width (``facts``). A ``plan
    --json`` dict is still read (``PlanFacts.from_json``) for callers not yet moved to the facts."""
    if isinstance(facts, dict):
        facts = PlanFacts.from_json(facts)
    frames = facts.sample_rate / facts.stride * seconds
    tile_w = facts.tile_w
    tiles = math.ceil(frames / tile_w)
    batch = model.get("batch_size")
    compute = transfer = calls = 0.0
    share = model.get("a16_mac_share")
    slowdown = 1 + share * (model.get("a16_slowdown") - 1)  # 16-bit MACs at the notebook's measured slowdown
    for row in facts.per_stage:
        compute += row.macs_per_frame * frames / model.macs_per_second * slowdown
        transfer += (
            row.boundary_values_per_audio_second * seconds * model.get("bytes_per_value") / model.bytes_per_second
        )
        calls += math.ceil(tiles * row.batch_groups / batch)
    execution = facts.execution  # per pass over the stages: one utterance, or one hop
    switches, activations = execution.switches, execution.activations
    configured = execution.network_groups_configured
    overhead = (
        calls * model.get("call_overhead_ms")
        + switches * model.get("switch_overhead_ms")
        + activations * model.get("activation_overhead_ms")
        + configured * model.get("configure_overhead_ms")
    ) / 1e3
    total = compute + transfer + overhead
    return {
        "tile_w": tile_w,
        "compute_s": compute,
        "transfer_s": transfer,
        "calls": int(calls),
        "execution_mode": execution.mode,
        "network_group_switches": switches,
        "activations": activations,
        "network_groups_reconfigured": configured,
        "configure_windows": execution.configure_windows,
        "overhead_s": overhead,
        "device_s": total,
        "rtf": total / seconds,
        # offline plans (gLN) need the whole utterance at every block: the first output
        # sample leaves after all of it is in and processed
        "latency_to_first_output_s": seconds + total,
    }


def recommend(predictions: list[dict]) -> int:
    """The tile width with the lowest predicted device time."""
    return min(predictions, key=lambda p: p["device_s"])["tile_w"]


CANDIDATE_TILE_WIDTHS = (32, 64, 128, 256, 512)


def device_predictions(plan, seconds: float, model: DeviceModel, tile_widths) -> dict:
    """Predictions per tile width for ``model``, the recommended width, and the recommended
    width's RTF on every device and link."""
    from .packing import pack_stages
    from .report import summarize_plan

    packing = pack_stages([s.name for s in plan.stages])
    summaries = {w: summarize_plan(plan, w, packing) for w in sorted(set(tile_widths) | set(CANDIDATE_TILE_WIDTHS))}
    rows = [predict(summary.facts, seconds, model) for summary in summaries.values()]
    best = recommend(rows)
    every = {
        f"{device}_{link}": predict(summaries[best].facts, seconds, DeviceModel(device, link, model.values))["rtf"]
        for device in DEVICES
        for link in LINKS
    }
    chosen = summaries[best].to_json()
    return {
        **model.describe(),
        "per_tile_width": rows,
        "recommended_tile_w": best,
        "rtf_at_recommended": every,
        "execution": chosen["execution"],
        "execution_modes": chosen["execution_modes"],
    }


def stream_prediction(plan, hop: int, model: DeviceModel, mode=None) -> dict:
    """Per-hop device time of a streaming plan in execution ``mode`` (default scheduled_groups):
    one inference call per stage and hop (batches cannot wait for later hops) on one tile of
    ``hop / S`` frames, or, for a receptive-field window plan (``plan.rf_windows``), on one window
    of W frames (the hop's frames plus the recomputed context); the network groups entered per
    hop (``plan.packing``); end-to-end latency = the hop's buffering + the encoder window's delay +
    that device time (host time on the Pi is not modelled)."""
    from .packing import ExecutionMode, pack_stages
    from .report import summarize_plan

    config = plan.config
    window = plan.rf_window
    hop_frames = hop // config.stride
    tile_w = window or hop_frames
    hop_seconds = hop / config.sample_rate
    one_call = DeviceModel(model.device, model.link, tuple(dict(model.values, batch_size=1.0).items()))
    mode = mode or ExecutionMode.SCHEDULED_GROUPS
    summary = summarize_plan(plan, tile_w, pack_stages([s.name for s in plan.stages], mode=mode))
    # a window plan computes (and moves) a whole window per stage and hop
    seconds = (window * config.stride / config.sample_rate) if window else hop_seconds
    row = predict(summary.facts, seconds, one_call)
    macs = sum(r.macs_per_frame for r in summary.per_stage) * tile_w
    window_delay = (math.ceil(config.kernel_size / config.stride) - 1) * config.stride / config.sample_rate
    device_ms = 1e3 * row["device_s"]
    return {
        **one_call.describe(),
        "plan": "rf_windows" if window else "per_hop",
        "hop_samples": hop,
        "tile_w": tile_w,
        "window_frames": window,
        "calls_per_hop": row["calls"],
        "execution_mode": row["execution_mode"],
        "network_groups": summary.network_groups,
        "configure_windows": row["configure_windows"],
        "network_group_switches_per_hop": row["network_group_switches"],
        "activations_per_hop": row["activations"],
        "network_groups_reconfigured_per_hop": row["network_groups_reconfigured"],
        "macs_per_hop": macs,
        "recomputed_macs_per_hop": macs - macs * hop_frames // tile_w,
        "boundary_bytes_per_hop": sum(r.boundary_values_per_audio_second for r in summary.per_stage)
        * seconds
        * one_call.get("bytes_per_value"),
        "compute_ms_per_hop": 1e3 * row["compute_s"],
        "transfer_ms_per_hop": 1e3 * row["transfer_s"],
        "overhead_ms_per_hop": 1e3 * row["overhead_s"],
        "device_ms_per_hop": device_ms,
        "device_rtf": row["device_s"] / hop_seconds,
        "meets_real_time": device_ms < 1e3 * hop_seconds,
        "fits_device": row["configure_windows"] == 1,
        "end_to_end_latency_ms": 1e3 * (hop_seconds + window_delay) + device_ms,
    }
