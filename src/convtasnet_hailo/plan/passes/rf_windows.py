"""Receptive-field windows (``--rf-windows``): a causal model streamed in one or a few device
calls per hop, its context recomputed on the chip instead of shipped by the host.

The per-hop plan cuts a causal model at every depthwise conv, because the host keeps each conv's
past frames and re-sends them: 16 to 31 device calls per hop for the demo model, each with its
overhead and its network-group switch (``plan.packing``). Here a *span* of the model (encoder,
bottleneck, TCN blocks, mask heads, mask multiply, source projection: everything up to the
decoder's overlap-add) takes one input window of ``W = T + RF - 1`` frames, the hop's T new
frames plus the span's receptive field, and computes every frame of it:

- every causal conv pads ``(K-1)*d`` zero frames inside the window (``Conv.pad_left``), so every
  tensor in the span is W frames wide and the hop's last T frames are exact once the window
  covers the receptive field;
- before the stream's first frame the reference pads each conv's *input* with zeros; the window
  does the same with a valid mask (1 inside the stream, 0 before it) multiplied into every padded
  conv's input, broadcast over channels by a 1x1 conv of ones (an ordinary conv, no broadcasting
  op needed on the device);
- cLN is per frame (``--device-norms``' ``ChannelNorm``), skip sums are ``Add`` ops, the mask's
  ReLU or sigmoid is an op, and the mask head is one 1x1 conv per source (the rows of the
  reference's conv: no split of channels inside the stage).

Where a single span would be wider than ``max_width``, the plan splits the units in order into
the fewest spans whose receptive fields fit ``W = max_width``; the host keeps, at each span
boundary, the history of exact frames the next span reads. The host's work per hop is the audio
window, those histories and the decoder's overlap-add.
Models with gLN or cgLN (whole-utterance or running statistics) or a softmax mask (over sources)
are refused: their host steps cannot sit inside a span.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...errors import UserError
from ...model.config import ConvTasNetConfig, MaskAct, NormType
from ..host_steps import ActivateMask, AddTensors, Alias, FitLength, OverlapAdd, SplitSources, StackSources
from ..names import WAV
from ..ops import Add, Conv, Mul, Relu, Sigmoid
from ..stages import POINTWISE, InputKind, Stage, StageInput, StageOutput

#: The executor-made mask input of a span: 1 for frames inside the stream, 0 before it.
VALID = "rf_valid"
DEFAULT_MAX_WIDTH = 512  # the widest conv output that compiled in the seed's runs (hailo_rules.CheckLimits)


def hop_samples(hop_ms: float, rate: int, stride: int) -> int:
    """``hop_ms`` as samples; refused unless a whole number of encoder strides."""
    samples = hop_ms * rate / 1000
    if abs(samples - round(samples)) > 1e-6 or round(samples) % stride or samples < stride:
        stride_ms = 1000 * stride / rate
        raise UserError(
            f"--hop-ms {hop_ms:g} is {samples:g} samples at {rate} Hz; a hop must be a whole number of "
            f"encoder strides ({stride} samples = {stride_ms:g} ms), e.g. "
            f"{', '.join(f'{k * stride_ms:g}' for k in (4, 8, 16, 32))} ms"
        )
    return round(samples)


def check_rf_windows(config: ConvTasNetConfig) -> None:
    if not config.causal or config.norm_type is not NormType.CLN:
        raise UserError(
            f"--rf-windows needs a causal model with cLN norms (this one: {config.norm_type.value}, "
            f"causal={config.causal}): gLN and cgLN keep whole-utterance or running statistics on the "
            "host, which cannot sit inside a span; stream it with the per-hop plan (no --rf-windows)"
        )
    if config.mask_act is MaskAct.SOFTMAX:
        raise UserError(
            "--rf-windows: a softmax mask runs over the sources on the host; stream this model with the "
            "per-hop plan (no --rf-windows)"
        )


@dataclasses.dataclass
class _Unit:
    """Ops that go into a span together, and the history frames their padded convs need."""

    ops: list
    history: int = 0  # sum of (K-1)*d over the unit's padded convs


def _stage_unit(stage: Stage, rename: dict[str, str]) -> _Unit:
    """A plan stage as span ops: its reads renamed, each halo'd input padded inside the window
    and multiplied by the valid mask first."""
    ops, history = [], 0
    padded = {p.name: p for p in stage.inputs if p.geometry.pad_left and p.geometry.stride == 1}
    for op in stage.ops:
        op = op.renamed(rename)
        if isinstance(op, Conv) and op.input in {rename.get(n, n) for n in padded}:
            port = padded[next(n for n in padded if rename.get(n, n) == op.input)]
            width = port.channels
            masked = f"{op.input}__valid"
            ops += [
                Conv(VALID, f"{VALID}_{width}", np.ones((width, 1, 1, 1), np.float32)),
                Mul(op.input, f"{VALID}_{width}", masked),
            ]
            op = dataclasses.replace(op, input=masked, pad_left=port.geometry.pad_left)
            history += port.geometry.pad_left
        ops.append(op)
    return _Unit(ops, history)


def _per_source(op, sources: int, split: set[str]):
    """``op`` once per source where it reads a per-source tensor (names suffixed ``_s<k>``)."""
    if not any(name in split for name in op.reads):
        return None
    return [
        op.renamed({name: f"{name}_s{k}" for name in (*op.reads, op.output) if name in split or name == op.output})
        for k in range(sources)
    ]


def _units(steps, config: ConvTasNetConfig) -> tuple[list[_Unit], list, list[str]]:
    """The device units in plan order, the host steps left after them (the decoder's tail), and
    the per-source names the span outputs for the tail."""
    units, tail, rename = [], [], {}
    split: set[str] = set()  # tensors that exist once per source
    n_src = config.n_src
    for step in steps:
        if isinstance(step, Stage):
            if any(rename.get(n, n) in split for n in step.reads):
                ops = []
                for op in step.ops:
                    op = op.renamed(rename)
                    copies = _per_source(op, n_src, split)
                    if copies is None:
                        ops.append(op)
                    else:
                        ops += copies
                        split.add(op.output)
                units.append(_Unit(ops))
            else:
                units.append(_stage_unit(step, rename))
        elif isinstance(step, AddTensors):
            units.append(_Unit([Add(rename.get(step.a, step.a), rename.get(step.b, step.b), step.output)]))
        elif isinstance(step, Alias):
            rename[step.output] = rename.get(step.input, step.input)
        elif isinstance(step, SplitSources):
            units[-1] = _split_mask_head(units[-1], rename.get(step.input, step.input), step.output, n_src)
            split.add(step.output)
        elif isinstance(step, ActivateMask) and step.act is MaskAct.LINEAR:
            rename[step.output] = rename.get(step.input, step.input)
        elif isinstance(step, ActivateMask):
            source = rename.get(step.input, step.input)
            act = Relu if step.act is MaskAct.RELU else Sigmoid
            units.append(_Unit([act(f"{source}_s{k}", f"{step.output}_s{k}") for k in range(n_src)]))
            split.add(step.output)
        elif isinstance(step, OverlapAdd):
            source = rename.get(step.input, step.input)
            stacked = tuple(f"{source}_s{k}" for k in range(n_src))
            tail += [StackSources(stacked, source), dataclasses.replace(step, input=source)]
            outputs = list(stacked)
        elif isinstance(step, FitLength):
            tail.append(dataclasses.replace(step, input=rename.get(step.input, step.input)))
        else:
            raise UserError(f"--rf-windows: host step {type(step).__name__} cannot be part of a span")
    for name, source in rename.items():  # aliases after the last device step (the runbook's names)
        if any(source in s.writes for s in tail):
            tail.append(Alias(source, name))
    return units, tail, outputs


def _split_mask_head(unit: _Unit, mask_net: str, score: str, n_src: int) -> _Unit:
    """The mask head's conv (n_src * N outputs, source-major) as one conv per source."""
    conv = next(op for op in unit.ops if isinstance(op, Conv) and op.output == mask_net)
    rows = conv.weight.shape[0] // n_src
    per_source = [
        dataclasses.replace(
            conv,
            output=f"{score}_s{k}",
            weight=conv.weight[k * rows : (k + 1) * rows],
            bias=None if conv.bias is None else conv.bias[k * rows : (k + 1) * rows],
        )
        for k in range(n_src)
    ]
    index = unit.ops.index(conv)
    return _Unit(unit.ops[:index] + per_source + unit.ops[index + 1 :], unit.history)


def _made_and_read(unit: _Unit) -> tuple[list[str], set[str]]:
    made = [op.output for op in unit.ops]
    return made, {name for op in unit.ops for name in op.reads if name not in made}


def _crossing(units: list[_Unit], cut: int, channels: dict[str, int]) -> int:
    """Channels that cross a cut before unit ``cut``: made before it, read at or after it."""
    before = {name for unit in units[:cut] for name in _made_and_read(unit)[0]}
    after = set().union(*(_made_and_read(unit)[1] for unit in units[cut:])) if cut < len(units) else set()
    return sum(channels[name] for name in before & after if not name.startswith(VALID))


def _group(units: list[_Unit], budget: int, channels: dict[str, int]) -> list[list[_Unit]]:
    """Units in order into the fewest spans whose history fits ``budget`` frames; among those,
    the cuts that send the fewest channels across (each cut is a host-kept history)."""
    for unit in units:
        if unit.history > budget:
            raise UserError(
                f"--rf-windows: one conv needs {unit.history} frames of history, more than a window of "
                f"{budget} frames beyond the hop leaves; raise --max-width or use shorter hops"
            )
    n = len(units)
    best: list[tuple[int, int, int] | None] = [None] * (n + 1)  # (spans, channels, previous cut)
    best[0] = (0, 0, -1)
    for end in range(1, n + 1):
        used = 0
        for start in range(end - 1, -1, -1):
            used += units[start].history
            if used > budget:
                break
            if best[start] is None:
                continue
            cost = (best[start][0] + 1, best[start][1] + (_crossing(units, end, channels) if end < n else 0), start)
            if best[end] is None or cost[:2] < best[end][:2]:
                best[end] = cost
    cuts, end = [], n
    while end > 0:
        start = best[end][2]
        cuts.insert(0, (start, end))
        end = start
    return [units[a:b] for a, b in cuts]


def _channels(units: list[_Unit]) -> dict[str, int]:
    channels = {WAV: 1, VALID: 1}
    for unit in units:
        for op in unit.ops:
            channels[op.output] = op.out_channels(channels)
    return channels


def window_width(units: list[_Unit], hop_frames: int, max_width: int) -> int:
    """W: the hop plus the whole receptive field, or ``max_width`` when that is wider."""
    total = sum(u.history for u in units)
    if hop_frames > max_width:
        raise UserError(f"--rf-windows: a hop of {hop_frames} frames is wider than --max-width {max_width}")
    return min(hop_frames + total, max_width)


def _span_stage(
    index: int, units: list[_Unit], made_before: dict[str, int], wav_port: StageInput, read_later: set[str]
) -> Stage:
    ops = [op for unit in units for op in unit.ops]
    seen, unique = set(), []
    for op in ops:  # one valid-mask broadcast per channel count
        if op.output in seen and op.output.startswith(VALID):
            continue
        seen.add(op.output)
        unique.append(op)
    made = {op.output for op in unique}
    reads = list(dict.fromkeys(name for op in unique for name in op.reads if name not in made))
    inputs = []
    for name in reads:
        if name == WAV:
            inputs.append(wav_port)
        elif name == VALID:
            inputs.append(StageInput(VALID, 1, POINTWISE, InputKind.VALID_MASK))
        else:
            inputs.append(StageInput(name, made_before[name]))
    channels = {p.name: p.channels for p in inputs}
    for op in unique:
        channels[op.output] = op.out_channels(channels)
    outputs = tuple(StageOutput(name, channels[name]) for name in made if name in read_later)
    ordered = tuple(sorted(outputs, key=lambda p: [op.output for op in unique].index(p.name)))
    made_before.update({p.name: p.channels for p in ordered})
    return Stage(
        f"span{index}",
        tuple(inputs),
        ordered,
        tuple(unique),
        role=f"receptive-field span {index}: {len(units)} units on one window",
    )


def window_steps(steps, config: ConvTasNetConfig, hop_frames: int, max_width: int) -> tuple[list, int]:
    """The per-hop plan's steps (unfused, norms on the device) as spans + the decoder's host
    tail, and the window width W every span runs at."""
    check_rf_windows(config)
    units, tail, outputs = _units(steps, config)
    width = window_width(units, hop_frames, max_width)
    spans = _group(units, width - hop_frames, _channels(units))
    wav_port = next(p for s in steps if isinstance(s, Stage) for p in s.inputs if p.name == WAV)
    needed: list[set[str]] = []
    later = set(outputs)
    for span in reversed(spans):  # what each span must output: what later spans or the tail read
        needed.insert(0, set(later))
        made = {op.output for unit in span for op in unit.ops}
        later |= {name for unit in span for op in unit.ops for name in op.reads if name not in made}
    made_before: dict[str, int] = {}
    stages = [_span_stage(i, span, made_before, wav_port, needed[i]) for i, span in enumerate(spans)]
    return stages + tail, width
