"""The device's integer arithmetic for one op: values on a quantization grid (:class:`QValue`), each
op type's integer kernel (``quant_scheme`` holds every assumption, with its source), the float form
of each op, and the layer names (like the ONNX node ``<stage>/<op><index>``) that precision and
model scripts refer to. ``emulation`` builds whole stages' emulation from these."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..plan.onnx_names import node_name
from ..plan.ops import (
    OP_TYPES,
    Add,
    ChannelNorm,
    Concat,
    Conv,
    Mul,
    PRelu,
    Relu,
    Sigmoid,
    TileEdge,
    TileMean,
    TileSumSquare,
)
from ..plan.stages import Stage
from . import quant_scheme as qs


def layer_name(stage: Stage, index: int, op) -> str:
    """The op's ONNX node name in its stage file (``plan.onnx_names``): the layer's name here."""
    return node_name(stage, index, op)


@dataclasses.dataclass
class QValue:
    """A quantized tensor: integer-valued float64 ``q`` on ``grid``."""

    q: np.ndarray
    grid: qs.Grid

    @property
    def real(self) -> np.ndarray:
        return qs.dequantize(self.q, self.grid)


def _integer_conv(x_int, w_int: np.ndarray, op: Conv) -> np.ndarray:
    """The exact integer sums: in float32 when no partial sum can pass 2**24 (every one is then
    an exactly representable integer, in any order), else in float64 (exact below 2**53)."""
    import torch
    import torch.nn.functional as F

    fan_in = w_int.shape[1] * w_int.shape[3]
    bound = float(x_int.abs().max()) * float(np.abs(w_int).max()) * fan_in
    dtype = torch.float32 if bound < 2**24 else torch.float64
    return (
        F.conv2d(
            x_int.to(dtype),
            torch.from_numpy(w_int).to(dtype),
            stride=(1, op.stride),
            dilation=(1, op.dilation),
            groups=op.groups,
        )
        .numpy()
        .astype(np.float64)
    )


def _conv(
    op: Conv,
    x: QValue,
    out: qs.Grid,
    weight_bits: int,
    granularity: qs.WeightGranularity = qs.WeightGranularity.PER_LAYER,
) -> np.ndarray:
    """Integer conv: (x_int * w_int) summed in the accumulator, bias at the accumulator's scale,
    one rescale to the output grid. ``op.bias`` is the (possibly corrected) float bias."""
    import torch
    import torch.nn.functional as F

    w_int, w_scale = qs.quantize_weights(op.weight, weight_bits, granularity)
    x_int = torch.from_numpy(x.q - x.grid.zero_point)
    if op.pad_left:
        x_int = F.pad(x_int, (op.pad_left, 0))  # integer 0 is real 0: the zero-point-free padding is exact
    acc = _integer_conv(x_int, w_int, op)
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
    return np.concatenate(
        [qs.requantize(v.q - v.grid.zero_point, v.grid.scale / out.scale, out) for v in values], axis=-1
    )


def _tile_sum_square(op: TileSumSquare, x: QValue, out: qs.Grid) -> np.ndarray:
    """The integer sum of squares over the tile, one rescale by s_in^2 / s_out."""
    x_int = x.q - x.grid.zero_point
    return qs.requantize(np.square(x_int).sum(axis=-1, keepdims=True), x.grid.scale**2 / out.scale, out)


def _tile_edge(op: TileEdge, x: QValue, out: qs.Grid) -> np.ndarray:
    """The frames cut, requantized to the output's grid."""
    cut = x.q[..., : op.frames] if op.side == "head" else x.q[..., max(0, x.q.shape[-1] - op.frames) :]
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
EMULATE = {
    Conv: _conv,
    PRelu: _prelu,
    Relu: _relu,
    Add: _add,
    Mul: _mul,
    TileMean: _tile_mean,
    TileSumSquare: _tile_sum_square,
    Concat: _concat,
    TileEdge: _tile_edge,
    Sigmoid: _float_then_requantize(_sigmoid),
    ChannelNorm: _float_then_requantize(_channel_norm),
}
assert set(EMULATE) == set(OP_TYPES), "every op type needs its integer form"


def emulate_op(
    op,
    inputs: list[QValue],
    out: qs.Grid,
    weight_bits: int,
    granularity: qs.WeightGranularity = qs.WeightGranularity.PER_LAYER,
) -> QValue:
    if isinstance(op, Conv):
        return QValue(_conv(op, inputs[0], out, weight_bits, granularity), out)
    return QValue(EMULATE[type(op)](op, *inputs, out), out)


def float_op(op, inputs: list[np.ndarray]) -> np.ndarray:
    """The op in float64 (the reference for per-layer noise)."""
    import torch

    module = op.torch_module()
    if module is not None:
        module = module.double()
    with torch.no_grad():
        return op.torch_forward(module, *(torch.from_numpy(np.asarray(x, np.float64)) for x in inputs)).numpy()
