"""Hailo's integer arithmetic as far as public material states it, and every assumption this
emulator adds, in one place (docs/hailo_facts.md, "Quantization scheme").

Confirmed by public material (hailo.ai support lesson "Hailo Quantization Scheme";
community.hailo.ai "16 bit quantization", "What Layers are Quantized by Default by DFC"):
- activations are unsigned integers of 8 or 16 bits with a float scale and zero point,
  real = (q - zp) * scale; inputs and outputs are quantized/dequantized on the host;
- weights are signed integers of 4, 8 or 16 bits;
- a layer is 16-bit when the model script says ``quantization_param(<layer>,
  precision_mode=a16_w16)`` (and ``a8_w4`` gives 4-bit weights);
- an op's rescale is a bounded shift: "Desired shift is 10.0, but op has only 8 data bits"
  (``NegativeSlopeExponentNonFixable``, the seed's origin, a PReLU's negative slope).

Assumptions (UNCONFIRMED; each named, each used from here only):
- ranges are the calibration set's min/max, widened to include 0 (so zero padding is exact);
- weights are symmetric per output channel (``PER_CHANNEL_WEIGHTS``);
- biases are held at the accumulator's scale (in_scale * w_scale), as wide as the accumulator
  (a channel with tiny weights has a tiny accumulator scale: a 32-bit bias saturated there);
- products accumulate exactly in ``ACCUMULATOR_BITS[activation bits]`` bits, saturating (8-bit
  layers 32; 16-bit layers 48, since a 16 x 16-bit product summed over 512 channels needs 39 bits
  and 32 would saturate every conv);
- every output rescale multiplies by an integer mantissa of ``RESCALE_MANTISSA_BITS`` bits and
  shifts right, rounding half up; a PReLU's negative slope is such a mantissa (data bits wide)
  with a shift of at most the layer's data bits;
- an elementwise add rescales both inputs to the output scale, then adds; a multiply multiplies
  the zero-point-free integers and rescales;
- Sigmoid (and the per-frame norm of ``--device-norms``) is exact on the dequantized input, then
  requantized (the hardware's piecewise approximation is not public).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PER_CHANNEL_WEIGHTS = True
ACCUMULATOR_BITS = {8: 32, 16: 48}
RESCALE_MANTISSA_BITS = 16

#: precision_mode -> (activation bits, weight bits) (the model script's names).
PRECISION_MODES = {"a8_w8": (8, 8), "a16_w16": (16, 16), "a8_w4": (8, 4)}
DEFAULT_MODE = "a8_w8"


@dataclasses.dataclass(frozen=True)
class Grid:
    """An activation grid: real = (q - zero_point) * scale, q in [0, 2**bits - 1]."""

    scale: float
    zero_point: int
    bits: int

    @property
    def q_max(self) -> int:
        return 2 ** self.bits - 1


def activation_grid(lo: float, hi: float, bits: int) -> Grid:
    """The uint grid that covers [lo, hi] widened to include 0, with 0 exactly on it."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    q_max = 2 ** bits - 1
    scale = (hi - lo) / q_max if hi > lo else 1.0
    return Grid(scale, int(round(-lo / scale)), bits)


def quantize(x: np.ndarray, grid: Grid) -> np.ndarray:
    """Round half to even (numpy's rint), clip to the grid: integer-valued float64."""
    return np.clip(np.rint(np.asarray(x, np.float64) / grid.scale) + grid.zero_point, 0, grid.q_max)


def dequantize(q: np.ndarray, grid: Grid) -> np.ndarray:
    return (q - grid.zero_point) * grid.scale


def quantize_weights(weight: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric signed integers, one scale per output channel (axis 0) or per tensor.
    Returns (integer-valued float64 weights, scales shaped to broadcast over axis 0)."""
    w = np.asarray(weight, np.float64)
    q_max = 2 ** (bits - 1) - 1
    axes = tuple(range(1, w.ndim))
    peak = np.abs(w).max(axis=axes, keepdims=True) if PER_CHANNEL_WEIGHTS else np.full((len(w),) + (1,) * (w.ndim - 1),
                                                                                         np.abs(w).max())
    scale = np.where(peak > 0, peak / q_max, 1.0)
    return np.clip(np.rint(w / scale), -q_max, q_max), scale


def saturate(acc: np.ndarray, bits: int) -> np.ndarray:
    limit = 2 ** (bits - 1)
    return np.clip(acc, -limit, limit - 1)


def mantissa_shift(multiplier: np.ndarray | float, mantissa_bits: int = RESCALE_MANTISSA_BITS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``multiplier`` (> 0) as mantissa * 2**-shift with the mantissa in [2**(b-1), 2**b)."""
    m = np.asarray(multiplier, np.float64)
    exponent = np.floor(np.log2(np.where(m > 0, m, 1.0)))
    shift = (mantissa_bits - 1) - exponent
    mantissa = np.rint(m * 2.0 ** shift)
    return np.where(m > 0, mantissa, 0.0), shift


def rescale(acc: np.ndarray, multiplier: np.ndarray | float) -> np.ndarray:
    """round_half_up(acc * mantissa / 2**shift): the integer rescale to the output grid."""
    mantissa, shift = mantissa_shift(multiplier)
    return np.floor(acc * mantissa / 2.0 ** shift + 0.5)


def requantize(acc: np.ndarray, multiplier: np.ndarray | float, out: Grid) -> np.ndarray:
    return np.clip(rescale(acc, multiplier) + out.zero_point, 0, out.q_max)


def slope_shift(slope: float) -> int:
    """The right shift a PReLU's negative slope needs as an integer multiplier: minus its binary
    exponent (0.001 -> 10: the origin's "Desired shift is 10.0, but op has only 8 data bits")."""
    slope = abs(float(slope))
    return 0 if slope == 0 or slope >= 1 else int(-math.floor(math.log2(slope)))


def slope_fits(slope: float, bits: int) -> bool:
    """A negative slope fits when its shift is at most the layer's data bits."""
    return slope_shift(slope) <= bits


def quantize_slope(slope: float, bits: int) -> float:
    """The slope as the datapath holds it: a signed (bits)-bit mantissa times 2**-shift with the
    shift at most ``bits``; a slope that needs more shift loses its low bits (possibly all)."""
    if slope == 0:
        return 0.0
    exponent = math.floor(math.log2(abs(float(slope))))
    shift = min(bits - 2 - exponent, bits)
    limit = 2 ** (bits - 1)
    return float(np.clip(np.rint(slope * 2.0 ** shift), -limit, limit - 1) / 2.0 ** shift)
