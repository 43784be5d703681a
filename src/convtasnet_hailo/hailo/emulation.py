"""The device's integer arithmetic, emulated op by op without the SDK (the ``hailo_quant`` backend's).

Weights and activations are quantized per ``quant_scheme`` (every assumption is there, with its
source or marked unconfirmed); activation ranges come from calibration tiles (the files
`compile` writes, ``quantization.calibration``), recorded op by op by running each stage in float on
them (:func:`calibrate_ranges`). Per layer (an op, named like its ONNX node
``<stage>/<op><index>``) the precision is ``a8_w8`` (default), ``a16_w16`` or ``a8_w4``.
Stage inputs are quantized on the host, stage outputs dequantized (HailoRT's FLOAT32 vstreams);
host steps between stages stay float. Before quantizing, the DFC steps the scheme names are
emulated (:func:`calibrated`, :func:`build_emulation`: equalization, clipped ranges, bias
correction). :func:`feasibility` lists the rescales the datapath cannot hold at a precision.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..plan.ops import (
    Add,
    Conv,
    PRelu,
    Relu,
)
from ..plan.stages import Stage
from ..progress import Progress
from . import quant_scheme as qs
from .integer_ops import QValue, emulate_op, float_op, layer_name
from .range_stats import RangeStats, read_tiles, tile_chunks, tile_count

Ranges = Mapping[str, tuple[float, float]]

log = logging.getLogger(__name__)


# Equalization (quant_scheme: cross-layer equalization; the DFC's `equalization` step).


@dataclasses.dataclass(frozen=True)
class EqualizedPair:
    """Two convs of one stage equalized through the activation between them (or none)."""

    first: str  # layer names
    second: str
    activation: str | None


def _readers(stage: Stage) -> dict[str, list[int]]:
    readers: dict[str, list[int]] = {}
    for index, op in enumerate(stage.ops):
        for name in op.reads:
            readers.setdefault(name, []).append(index)
    return readers


def _sole_reader(stage: Stage, readers: dict[str, list[int]], value: str) -> int | None:
    """The one op reading ``value``, or None (several, none, or a stage output the host reads)."""
    if value in stage.writes or len(readers.get(value, [])) != 1:
        return None
    return readers[value][0]


def equalization_pairs(stage: Stage) -> list[tuple[int, int | None, int]]:
    """(first conv, activation or None, dense conv) op indices the rule allows: the first conv's
    output reaches the dense conv only through a positive-homogeneous activation (none, ReLU,
    single-slope PReLU: f(s x) = s f(x) for s > 0), and no intermediate leaves the stage."""
    readers, pairs = _readers(stage), []
    for index, op in enumerate(stage.ops):
        if not isinstance(op, Conv):
            continue
        middle = _sole_reader(stage, readers, op.output)
        activation = None
        if middle is not None and isinstance(stage.ops[middle], (PRelu, Relu)):
            activation, middle = middle, _sole_reader(stage, readers, stage.ops[middle].output)
        if middle is not None and isinstance(stage.ops[middle], Conv) and stage.ops[middle].groups == 1:
            pairs.append((index, activation, middle))
    return pairs


def equalize_stage(stage: Stage) -> tuple[Stage, list[EqualizedPair]]:
    """The stage with every allowed pair equalized (equal in float: the second conv undoes the
    first's per-channel factors), and the pairs. Pairs are taken in plan order, so a conv that is
    second of one pair and first of the next is equalized with its updated weights."""
    ops = list(stage.ops)
    done = []
    for first, activation, second in equalization_pairs(stage):
        a, b = ops[first], ops[second]
        peaks_a = np.abs(a.weight).reshape(len(a.weight), -1).max(axis=1)
        peaks_b = np.abs(b.weight).transpose(1, 0, 2, 3).reshape(b.weight.shape[1], -1).max(axis=1)
        s = qs.equalization_scales(peaks_a, peaks_b)
        ops[first] = dataclasses.replace(
            a,
            weight=(a.weight / s.reshape(-1, 1, 1, 1)).astype(np.float32),
            bias=None if a.bias is None else (a.bias / s).astype(np.float32),
        )
        ops[second] = dataclasses.replace(b, weight=(b.weight * s.reshape(1, -1, 1, 1)).astype(np.float32))
        done.append(
            EqualizedPair(
                layer_name(stage, first, a),
                layer_name(stage, second, b),
                None if activation is None else layer_name(stage, activation, ops[activation]),
            )
        )
    return dataclasses.replace(stage, ops=tuple(ops)), done


# Calibration.


@dataclasses.dataclass
class Calibration:
    """Per tensor: min/max over the calibration tiles, and the percentiles clipping may use."""

    minmax: dict[str, tuple[float, float]]
    percentiles: dict[str, dict[float, tuple[float, float]]]
    tiles: int = 0

    def ranges(self, scheme: qs.Scheme) -> dict[str, tuple[float, float]]:
        return {name: qs.clipped_range(mm, self.percentiles.get(name), scheme) for name, mm in self.minmax.items()}


def _calibration_files(stage: Stage, calibration: Mapping[str, Path]) -> dict[str, Path]:
    """The stage's inputs' calibration files (NHWC), every one present."""
    missing = [p.name for p in stage.inputs if p.name not in calibration]
    if missing:
        raise UserError(
            f"stage {stage.name}: no calibration tiles for {missing[0]}; calibrate this plan (run "
            "`noise` with the same --block-chan / --no-fuse / --device-norms)"
        )
    return {p.name: calibration[p.name] for p in stage.inputs}


def calibrate(stages: list[Stage], calibration: Mapping[str, Path], percentiles: bool = True) -> Calibration:
    """min/max (and percentiles) of every stage input and of every op output, each stage run in
    float on its own calibration tiles, ``range_stats.CHUNK_TILES`` tiles at a time (memory: one
    chunk's values, not every tile's)."""
    stats = RangeStats(percentiles)
    tiles = 0
    progress = Progress(log, "calibration ranges", len(stages), "stages")
    for stage in stages:
        files = _calibration_files(stage, calibration)
        total = max(tile_count(path) for path in files.values())
        tiles = max(tiles, total)
        for first, values in tile_chunks(files):
            for name, array in values.items():
                stats.note(name, array, first, total)
            for op in stage.ops:
                values[op.output] = float_op(op, [values[n] for n in op.reads])
                stats.note(op.output, values[op.output], first, total)
        stats.end_stage()
        progress.step()
    progress.finish()
    return Calibration(stats.minmax, stats.percentiles, tiles)


def calibrate_ranges(stages: list[Stage], calibration: Mapping[str, Path]) -> dict[str, tuple[float, float]]:
    """min/max of every stage input (from its calibration file, NHWC) and of every op output."""
    return calibrate(stages, calibration, percentiles=False).minmax


@dataclasses.dataclass(frozen=True)
class Precision:
    """Per-layer precision modes; layers not named use ``default``."""

    modes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    default: str = qs.DEFAULT_MODE

    def bits(self, layer: str) -> qs.ModeBits:
        mode = self.modes.get(layer, self.default)
        if mode not in qs.PRECISION_MODES:
            raise UserError(f"precision_mode {mode!r} for {layer}: choose {', '.join(qs.PRECISION_MODES)}")
        return qs.PRECISION_MODES[mode]

    def of(self, layer: str) -> tuple[int, int]:
        """(output activation bits, weight bits)."""
        bits = self.bits(layer)
        return bits.output, bits.weight


def fused_activations(stage: Stage) -> dict[int, int]:
    """conv index -> index of the activation that alone reads it (one DFC layer, quant_scheme)."""
    readers = _readers(stage)
    fused = {}
    for index, op in enumerate(stage.ops):
        reader = _sole_reader(stage, readers, op.output) if isinstance(op, Conv) else None
        if reader is not None and isinstance(stage.ops[reader], (PRelu, Relu)):
            fused[index] = reader
    return fused


def value_bits(stage: Stage, precision: Precision, fuse_activations: bool = False) -> dict[str, int]:
    """Bits of every value (quant_scheme, ASSUMPTION): the widest of what its producer writes and
    what its readers read (a stage input: its readers only; the host quantizes it); a fused
    conv's pre-activation value at ``FUSED_ACTIVATION_BITS``."""
    bits: dict[str, int] = {}
    for index, op in enumerate(stage.ops):
        mode = precision.bits(layer_name(stage, index, op))
        bits[op.output] = max(bits.get(op.output, 0), mode.output)
        for name in op.reads:
            bits[name] = max(bits.get(name, 0), mode.input)
    if fuse_activations:
        for conv in fused_activations(stage):
            bits[stage.ops[conv].output] = max(bits[stage.ops[conv].output], qs.FUSED_ACTIVATION_BITS)
    return bits


def _grids(
    stage: Stage, ranges: Ranges, precision: Precision, fuse_activations: bool = False
) -> Callable[[str], qs.Grid]:
    bits = value_bits(stage, precision, fuse_activations)

    def grid(name: str) -> qs.Grid:
        if name not in ranges:
            raise UserError(f"stage {stage.name}: no calibrated range for {name}; recalibrate for this plan")
        return qs.activation_grid(*ranges[name], bits[name])

    return grid


# Bias correction (quant_scheme: empirical bias correction; the DFC's `bias_correction` step).


def bias_corrections(
    stages: list[Stage], calibration: Mapping[str, Path], ranges: Ranges, precision: Precision, scheme: qs.Scheme
) -> dict[str, np.ndarray]:
    """layer -> corrected float bias (C_out,) for every conv. Each stage runs on its calibration
    tiles in float and, alongside, in integers with the biases corrected so far (the upstream
    error included); each conv's bias gets the mean, over batch and time, of (float output -
    emulated output) per channel, and the emulation goes on from the corrected conv."""
    corrected = {}
    for stage in stages:
        grid = _grids(stage, ranges, precision, scheme.fuse_activations)
        files = _calibration_files(stage, calibration)
        available = min(tile_count(path) for path in files.values())
        count = min(qs.BIAS_CORRECTION_TILES, available)
        draw = np.sort(np.random.default_rng(0).choice(available, count, replace=False))
        exact = {name: read_tiles(path, draw) for name, path in files.items()}  # the same tiles of every input
        quantized = {name: QValue(qs.quantize(x, grid(name)), grid(name)) for name, x in exact.items()}
        for index, op in enumerate(stage.ops):
            layer = layer_name(stage, index, op)
            exact[op.output] = float_op(op, [exact[n] for n in op.reads])
            bits = precision.bits(layer).weight

            def emulate(op=op, quantized=quantized, grid=grid, bits=bits):
                return emulate_op(
                    op, [quantized[n] for n in op.reads], grid(op.output), bits, scheme.weight_granularity
                )

            if isinstance(op, Conv):
                bias = np.zeros(len(op.weight)) if op.bias is None else op.bias.astype(np.float64)
                error = (exact[op.output] - emulate().real).mean(axis=(0, 2, 3))
                corrected[layer] = bias + error
                op = dataclasses.replace(op, bias=corrected[layer].astype(np.float32))
            quantized[op.output] = emulate(op)
    return corrected


@dataclasses.dataclass(frozen=True)
class Calibrated:
    """The stages as the DFC holds them before quantization (equalized when the scheme says so)
    and their ranges under the scheme (clipped, with headroom): what precision and bias
    correction build on."""

    stages: Mapping[str, Stage]
    ranges: Ranges
    scheme: qs.Scheme
    files: Mapping[str, Path]
    equalized: tuple[EqualizedPair, ...] = ()
    calibration: Calibration | None = None


def prepare_stages(stages: list[Stage], scheme: qs.Scheme) -> tuple[dict[str, Stage], tuple[EqualizedPair, ...]]:
    """The stages equalized when the scheme says so."""
    if not scheme.equalization:
        return {s.name: s for s in stages}, ()
    prepared, pairs = {}, []
    for stage in stages:
        prepared[stage.name], done = equalize_stage(stage)
        pairs.extend(done)
    return prepared, tuple(pairs)


def calibrated(
    stages: list[Stage], files: Mapping[str, Path], scheme: qs.Scheme, calibration: Calibration | None = None
) -> Calibrated:
    """Equalize, then calibrate the equalized stages (or reuse ``calibration`` of them)."""
    prepared, pairs = prepare_stages(stages, scheme)
    calibration = calibration or calibrate(list(prepared.values()), files)
    return Calibrated(prepared, calibration.ranges(scheme), scheme, files, pairs, calibration)


def rescheme(base: Calibrated, scheme: qs.Scheme) -> Calibrated:
    """``base`` under another clipping or bias-correction choice (same equalization, same calibration)."""
    if scheme.equalization != base.scheme.equalization or base.calibration is None:
        raise ValueError("rescheme keeps the equalization and needs the calibration")
    return dataclasses.replace(base, scheme=scheme, ranges=base.calibration.ranges(scheme))


@dataclasses.dataclass(frozen=True)
class Emulation:
    """Everything the emulated device computes with: the stages as the DFC holds them
    (equalized, biases corrected), the ranges, the precision and the scheme."""

    stages: Mapping[str, Stage]
    ranges: Ranges
    precision: Precision = Precision()
    scheme: qs.Scheme = qs.Scheme()
    equalized: tuple[EqualizedPair, ...] = ()
    #: the stages before bias correction: what float computes (equal to the plan's in float)
    float_stages: Mapping[str, Stage] = dataclasses.field(default_factory=dict)

    def stage(self, stage: Stage) -> Stage:
        return self.stages.get(stage.name, stage)

    def float_stage(self, stage: Stage) -> Stage:
        return self.float_stages.get(stage.name, stage)


def build_emulation(base: Calibrated, precision: Precision) -> Emulation:
    """``base`` at ``precision``, with biases corrected for it when the scheme says so."""
    stages = dict(base.stages)
    if base.scheme.bias_correction:
        biases = bias_corrections(list(stages.values()), base.files, base.ranges, precision, base.scheme)
        for name, stage in stages.items():
            ops = tuple(
                dataclasses.replace(op, bias=biases[layer_name(stage, i, op)].astype(np.float32))
                if isinstance(op, Conv)
                else op
                for i, op in enumerate(stage.ops)
            )
            stages[name] = dataclasses.replace(stage, ops=ops)
    return Emulation(stages, base.ranges, precision, base.scheme, base.equalized, dict(base.stages))


def run_stage_quantized(
    stage: Stage,
    inputs: Mapping[str, np.ndarray],
    ranges: Ranges,
    precision: Precision,
    scheme: qs.Scheme = qs.Scheme(),
) -> dict[str, np.ndarray]:
    """(batch, C, 1, W) float inputs -> float outputs, every op in the device's integers (the
    stage as given: equalization and bias correction are done before, ``build_emulation``)."""
    grid = _grids(stage, ranges, precision, scheme.fuse_activations)
    values = {p.name: QValue(qs.quantize(inputs[p.name], grid(p.name)), grid(p.name)) for p in stage.inputs}
    for index, op in enumerate(stage.ops):
        weight_bits = precision.bits(layer_name(stage, index, op)).weight
        values[op.output] = emulate_op(
            op, [values[n] for n in op.reads], grid(op.output), weight_bits, scheme.weight_granularity
        )
    return {p.name: values[p.name].real.astype(np.float32) for p in stage.outputs}


def run_emulated(emulation: Emulation, stage: Stage, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One stage of the plan as ``emulation`` holds it (its equalized, corrected form)."""
    return run_stage_quantized(emulation.stage(stage), inputs, emulation.ranges, emulation.precision, emulation.scheme)


def feasibility(plan, ranges, precision: Precision) -> list[dict]:
    """Layers whose rescale the datapath cannot hold at their precision, each with the fix."""
    problems = []
    for stage in plan.stages:
        for index, op in enumerate(stage.ops):
            name = layer_name(stage, index, op)
            act, _ = precision.of(name)
            if isinstance(op, PRelu) and not qs.slope_fits(op.slope, act):
                problems.append(
                    {
                        "layer": name,
                        "kind": "NegativeSlopeExponentNonFixable",
                        "detail": f"negative slope {op.slope:.3g} needs a shift of {qs.slope_shift(op.slope)}, the "
                        f"op has {act} data bits",
                        "fix": "quantization_param(..., precision_mode=a16_w16) on this layer, or move the PReLU to "
                        "the host (a different split)",
                    }
                )
            if isinstance(op, Add):
                grids = [qs.activation_grid(*ranges[n], act) for n in op.reads]
                ratio = max(g.scale for g in grids) / max(min(g.scale for g in grids), 1e-30)
                if ratio > 2**act:
                    problems.append(
                        {
                            "layer": name,
                            "kind": "add_scale_ratio",
                            "detail": f"input scales differ {ratio:.3g}x, more than {act} bits of shift: the smaller "
                            "input vanishes on the common grid",
                            "fix": "a16_w16 on this layer, or split so the add runs on the host",
                        }
                    )
    return problems
