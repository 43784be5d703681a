"""``hailo_quant``: each stage computed the way the device computes it, in integers, without the SDK.

Weights and activations are quantized per ``quant_scheme`` (every assumption is there, with its
source or marked unconfirmed); activation ranges come from calibration tiles (the files
`compile` writes, ``grids.calibration``), recorded op by op by running each stage in float on
them (:func:`calibrate_ranges`). Per layer (an op, named like its ONNX node
``<stage>/<op><index>``) the precision is ``a8_w8`` (default), ``a16_w16`` or ``a8_w4``.
Stage inputs are quantized on the host, stage outputs dequantized (HailoRT's FLOAT32 vstreams);
host steps between stages stay float. Judged by SQNR like every quantized backend.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import UserError
from ..records import RecordError, field, inside, items, read_json
from ..plan.ops import OP_TYPES, Add, ChannelNorm, Concat, Conv, Mul, PRelu, Relu, Sigmoid, TileEdge, TileMean, TileSumSquare
from ..plan.stages import Stage
from ..plan.builder import refuse_float_only
from . import quant_scheme as qs
from .base import Backend, register_backend

Ranges = Mapping[str, tuple[float, float]]


def layer_name(stage: Stage, index: int, op) -> str:
    """The op's ONNX node name in its stage file (``export.onnx_graph``): the layer's name here."""
    return f"{stage.name}/{type(op).__name__.lower()}{index}"


@dataclasses.dataclass
class QValue:
    """A quantized tensor: integer-valued float64 ``q`` on ``grid``."""

    q: np.ndarray
    grid: qs.Grid

    @property
    def real(self) -> np.ndarray:
        return qs.dequantize(self.q, self.grid)


def _conv(op: Conv, x: QValue, out: qs.Grid, weight_bits: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    w_int, w_scale = qs.quantize_weights(op.weight, weight_bits)
    acc = F.conv2d(torch.from_numpy(x.q - x.grid.zero_point), torch.from_numpy(w_int), stride=(1, op.stride),
                   dilation=(1, op.dilation), groups=op.groups).numpy()
    acc_scale = x.grid.scale * w_scale.reshape(1, -1, 1, 1)
    acc_bits = qs.ACCUMULATOR_BITS[x.grid.bits]
    if op.bias is not None:
        acc = acc + qs.saturate(np.rint(op.bias.reshape(1, -1, 1, 1) / acc_scale), acc_bits)
    return qs.requantize(qs.saturate(acc, acc_bits), acc_scale / out.scale, out)


def _prelu(op: PRelu, x: QValue, out: qs.Grid) -> np.ndarray:
    """One rescale per branch: x * s_in/s_out, or x * slope * s_in/s_out with the slope as the
    datapath holds it (``quantize_slope``)."""
    x_int = x.q - x.grid.zero_point
    slope = qs.quantize_slope(op.slope, x.grid.bits)
    ratio = x.grid.scale / out.scale
    negative = qs.rescale(x_int * np.sign(slope), abs(slope) * ratio) if slope else np.zeros_like(x_int)
    y = np.where(x_int >= 0, qs.rescale(x_int, ratio), negative)
    return np.clip(y + out.zero_point, 0, out.q_max)


def _relu(op: Relu, x: QValue, out: qs.Grid) -> np.ndarray:
    return qs.requantize(np.maximum(x.q - x.grid.zero_point, 0), x.grid.scale / out.scale, out)


def _add(op: Add, a: QValue, b: QValue, out: qs.Grid) -> np.ndarray:
    a_int = qs.rescale(a.q - a.grid.zero_point, a.grid.scale / out.scale)
    b_int = qs.rescale(b.q - b.grid.zero_point, b.grid.scale / out.scale)
    return np.clip(a_int + b_int + out.zero_point, 0, out.q_max)


def _tile_mean(op: TileMean, x: QValue, out: qs.Grid) -> np.ndarray:
    """A global average pool: the integer sum over the tile, one rescale by s_in / (W * s_out)."""
    x_int = x.q - x.grid.zero_point
    return qs.requantize(x_int.sum(axis=-1, keepdims=True), x.grid.scale / (x_int.shape[-1] * out.scale), out)


def _concat(op: Concat, *values_then_out) -> np.ndarray:
    """Each part (all arguments but the last, the output grid) requantized to the output's grid,
    then joined along time."""
    *values, out = values_then_out
    return np.concatenate([qs.requantize(v.q - v.grid.zero_point, v.grid.scale / out.scale, out) for v in values],
                          axis=-1)


def _tile_sum_square(op: TileSumSquare, x: QValue, out: qs.Grid) -> np.ndarray:
    """The integer sum of squares over the tile, one rescale by s_in^2 / s_out."""
    x_int = x.q - x.grid.zero_point
    return qs.requantize(np.square(x_int).sum(axis=-1, keepdims=True), x.grid.scale ** 2 / out.scale, out)


def _tile_edge(op: TileEdge, x: QValue, out: qs.Grid) -> np.ndarray:
    """The frames cut, requantized to the output's grid."""
    cut = x.q[..., :op.frames] if op.side == "head" else x.q[..., max(0, x.q.shape[-1] - op.frames):]
    return qs.requantize(cut - x.grid.zero_point, x.grid.scale / out.scale, out)


def _mul(op: Mul, a: QValue, b: QValue, out: qs.Grid) -> np.ndarray:
    acc = (a.q - a.grid.zero_point) * (b.q - b.grid.zero_point)
    return qs.requantize(acc, a.grid.scale * b.grid.scale / out.scale, out)


def _float_then_requantize(function: Callable[[np.ndarray], np.ndarray]):
    def emulate(op, x: QValue, out: qs.Grid) -> np.ndarray:
        return qs.quantize(function(op, x.real), out)
    return emulate


def _sigmoid(op: Sigmoid, real: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-real))


def _channel_norm(op: ChannelNorm, real: np.ndarray) -> np.ndarray:
    from ..model.config import NORM_EPS

    mean = real.mean(axis=1, keepdims=True)
    var = ((real - mean) ** 2).mean(axis=1, keepdims=True)
    return (real - mean) / np.sqrt(var + NORM_EPS) * op.gamma.reshape(1, -1, 1, 1) + op.beta.reshape(1, -1, 1, 1)


#: How the device computes each op type (``quant_scheme`` holds the arithmetic).
EMULATE = {Conv: _conv, PRelu: _prelu, Relu: _relu, Add: _add, Mul: _mul, TileMean: _tile_mean,
           TileSumSquare: _tile_sum_square,
           Concat: _concat, TileEdge: _tile_edge,
           Sigmoid: _float_then_requantize(_sigmoid), ChannelNorm: _float_then_requantize(_channel_norm)}
assert set(EMULATE) == set(OP_TYPES), "every op type needs its integer form"


def emulate_op(op, inputs: list[QValue], out: qs.Grid, weight_bits: int) -> QValue:
    if isinstance(op, Conv):
        return QValue(_conv(op, inputs[0], out, weight_bits), out)
    return QValue(EMULATE[type(op)](op, *inputs, out), out)


def float_op(op, inputs: list[np.ndarray]) -> np.ndarray:
    """The op in float64 (the reference for per-layer noise)."""
    import torch

    module = op.torch_module()
    if module is not None:
        module = module.double()
    with torch.no_grad():
        return op.torch_forward(module, *(torch.from_numpy(np.asarray(x, np.float64)) for x in inputs)).numpy()


def calibrate_ranges(stages: list[Stage], calibration: Mapping[str, Path]) -> dict[str, tuple[float, float]]:
    """min/max of every stage input (from its calibration file, NHWC) and of every op output,
    each stage run in float on its own calibration tiles."""
    from ..compile.layout import nhwc_to_nchw

    ranges: dict[str, tuple[float, float]] = {}

    def note(name: str, array: np.ndarray) -> None:
        lo, hi = float(array.min()), float(array.max())
        old = ranges.get(name)
        ranges[name] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))

    for stage in stages:
        missing = [p.name for p in stage.inputs if p.name not in calibration]
        if missing:
            raise UserError(f"stage {stage.name}: no calibration tiles for {missing[0]}; calibrate this plan (run "
                            "`noise` with the same --block-chan / --no-fuse / --device-norms)")
        values = {p.name: nhwc_to_nchw(np.load(calibration[p.name])).astype(np.float64) for p in stage.inputs}
        for name, array in values.items():
            note(name, array)
        for op in stage.ops:
            values[op.output] = float_op(op, [values[n] for n in op.reads])
            note(op.output, values[op.output])
    return ranges


@dataclasses.dataclass(frozen=True)
class Precision:
    """Per-layer precision modes; layers not named use ``default``."""

    modes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    default: str = qs.DEFAULT_MODE

    def of(self, layer: str) -> tuple[int, int]:
        mode = self.modes.get(layer, self.default)
        if mode not in qs.PRECISION_MODES:
            raise UserError(f"precision_mode {mode!r} for {layer}: choose {', '.join(qs.PRECISION_MODES)}")
        return qs.PRECISION_MODES[mode]


def _consumer_bits(stage: Stage, precision: Precision) -> dict[str, int]:
    """Activation bits of every value: its producing layer's, or (stage inputs) the widest of
    the layers reading it."""
    bits: dict[str, int] = {}
    for index, op in enumerate(stage.ops):
        act, _ = precision.of(layer_name(stage, index, op))
        bits[op.output] = act
        for name in op.reads:
            if name not in {o.output for o in stage.ops[:index]}:
                bits[name] = max(bits.get(name, 0), act)
    return bits


def run_stage_quantized(stage: Stage, inputs: Mapping[str, np.ndarray], ranges: Ranges,
                        precision: Precision) -> dict[str, np.ndarray]:
    """(batch, C, 1, W) float inputs -> float outputs, every op in the device's integers."""
    bits = _consumer_bits(stage, precision)

    def grid(name: str) -> qs.Grid:
        if name not in ranges:
            raise UserError(f"stage {stage.name}: no calibrated range for {name}; recalibrate for this plan")
        return qs.activation_grid(*ranges[name], bits[name])

    values = {p.name: QValue(qs.quantize(inputs[p.name], grid(p.name)), grid(p.name)) for p in stage.inputs}
    for index, op in enumerate(stage.ops):
        _, weight_bits = precision.of(layer_name(stage, index, op))
        values[op.output] = emulate_op(op, [values[n] for n in op.reads], grid(op.output), weight_bits)
    return {p.name: values[p.name].real.astype(np.float32) for p in stage.outputs}


@register_backend("hailo_quant")
class HailoQuantBackend(Backend):
    """The device's integer arithmetic, emulated stage by stage (module docstring)."""

    name = "hailo_quant"
    quantized = True

    def __init__(self, ranges: Ranges | None = None, precision: Precision | None = None,
                 noise_dir: Path | None = None) -> None:
        if ranges is None and noise_dir is None:
            raise UserError("backend hailo_quant needs calibrated ranges: run `convtasnet-hailo noise --out DIR` "
                            "on real audio, then pass --noise-dir DIR")
        self.noise_dir = noise_dir
        self.ranges = ranges
        self.precision = precision or (read_noise_precision(noise_dir) if noise_dir else Precision())

    def _prepare(self, plan, tile_w: int) -> None:
        refuse_float_only(plan.float_only_options, f"--backend {self.name}")
        if self.noise_dir is not None:
            self.ranges = noise_dir_ranges(self.noise_dir, plan)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_stage_quantized(stage, inputs, self.ranges, self.precision)


NOISE_REPORT = "noise_report.json"


#: The fields of ``noise_report.json`` read here, and their types (checked before use).
NOISE_REPORT_FIELDS = {"layers_16bit": list, "model_sha256": (str, type(None)), "model_seed": (int, type(None)),
                       "model_config": (dict, type(None)), "model_source": (str, type(None))}


def _noise_report(noise_dir: Path) -> dict:
    """The report's fields this backend reads, each of its type (an edited file is one line)."""
    path = Path(noise_dir) / NOISE_REPORT
    if not path.exists():
        raise UserError(f"--noise-dir {noise_dir}: no {NOISE_REPORT}; pass the --out folder of `convtasnet-hailo noise`")
    data = read_json(path, "noise report", "run `convtasnet-hailo noise` again")
    try:
        report = {key: field(data, key, kind, NOISE_REPORT, None) for key, kind in NOISE_REPORT_FIELDS.items()}
        items(report["layers_16bit"] or [], str, f"{NOISE_REPORT}.layers_16bit")
    except RecordError as error:
        raise UserError(f"{path} is not a `noise` report ({error}); run `convtasnet-hailo noise` again") from None
    return report


def check_noise_dir_model(noise_dir: Path, model_info: Mapping) -> None:
    """Refuses a `noise` folder made for another model (checkpoint hash, or random seed and config)."""
    report = _noise_report(noise_dir)
    keys = ("model_sha256",) if report.get("model_sha256") else ("model_seed", "model_config")
    if any(report.get(key) != model_info.get(key) for key in keys):
        raise UserError(f"--noise-dir {noise_dir} was made for another model ({report.get('model_source')}); "
                        "run `convtasnet-hailo noise` on this one")


def read_noise_precision(noise_dir: Path) -> Precision:
    """The advised precision `noise` chose: its 16-bit layers, every other layer a8_w8."""
    return Precision({name: "a16_w16" for name in _noise_report(noise_dir)["layers_16bit"] or []})


def noise_dir_ranges(noise_dir: Path, plan) -> dict[str, tuple[float, float]]:
    """Calibrated ranges for ``plan`` from the calibration tiles `noise` kept in ``noise_dir/calib``
    (names inside that folder only)."""
    index = Path(noise_dir) / "calib" / "calibration.json"
    if not index.exists():
        raise UserError(f"--noise-dir {noise_dir}: no calib/calibration.json; run `convtasnet-hailo noise` again")
    data = read_json(index, "calibration index", "run `convtasnet-hailo noise` again")
    try:
        files = {name: inside(index.parent, file, f"calibration file of {name}")
                 for name, file in field(data, "files", dict, "calibration.json").items()}
    except RecordError as error:
        raise UserError(f"{index} is not a calibration index ({error}); run `convtasnet-hailo noise` again") from None
    return calibrate_ranges(list(plan.stages), files)
