"""Hailo's integer arithmetic as far as public material states it, and every assumption this
emulator adds, in one place. Each rule names its source (a section of docs/hailo_facts.md, which
cites the public material) or says ASSUMPTION.

Sourced rules:
- activations are unsigned integers of 8 or 16 bits with a float scale and zero point,
  real = (q - zp) * scale; inputs and outputs are quantized/dequantized on the host
  (docs/hailo_facts.md "Quantization scheme": hailo.ai lesson "Hailo Quantization Scheme";
  community.hailo.ai "16 bit quantization", "What Layers are Quantized by Default by DFC");
- weights are signed integers of 4, 8 or 16 bits (same section);
- **one weight scale per layer** (``WeightGranularity.PER_LAYER``, the default): the public
  evidence points that way (same section: ``quantization_groups`` "Expected 1", per-channel
  encoding only as an opt-in for outputs, equalization enabled in many Model Zoo configs).
  ``PER_CHANNEL`` is kept as a switch to measure what that assumption costs;
- precision modes ``a8_w8``, ``a16_w16``, ``a8_w4`` and ``a8_w8_a16`` (8-bit in, 16-bit out)
  (docs/hailo_facts.md "Model optimization", the 16bit_optimization notebook); concat, shortcut and
  feature_splitter layers cannot change 8<->16 bits, so 16 bits spread through them to their
  neighbours (same notebook; :data:`SPREADS_16BIT`);
- a range is the calibration set's min/max (``calibset_size`` 64 by default, ranges kept as
  ``stats_limvals``: docs/hailo_facts.md "Model optimization"), or pinned per layer by
  ``quantization_param([<layer>], force_range_out=[lo, hi])`` ("Quantization scheme"), or clipped
  at percentiles by ``pre_quantization_optimization(activation_clipping, ..., mode=percentile,
  clipping_values=[lo%, hi%])`` ("Model optimization", Model Zoo alls lines);
- equalization is a full-precision step (``pre_quantization_optimization(equalization,
  policy=...)``; "Model optimization"); bias correction is a post-quantization step
  (``post_quantization_optimization(bias_correction, policy=...)``, optimization level 1;
  "Model optimization");
- an op's rescale is a bounded shift: "Desired shift is 10.0, but op has only 8 data bits"
  (``NegativeSlopeExponentNonFixable``; "Errors seen", and the seed's origin, a PReLU's slope).

Assumptions (UNCONFIRMED; each named, each used from here only):
- ranges are widened to include 0 (so zero padding is exact);
- weights are symmetric (no weight zero point);
- biases are held at the accumulator's scale (in_scale * w_scale), as wide as the accumulator
  (a layer with tiny weights has a tiny accumulator scale: a 32-bit bias saturated there);
- products accumulate exactly in ``ACCUMULATOR_BITS[activation bits]`` bits, saturating (8-bit
  layers 32; 16-bit layers 48, since a 16 x 16-bit product summed over 512 channels needs 39 bits
  and 32 would saturate every conv);
- every output rescale multiplies by an integer mantissa of ``RESCALE_MANTISSA_BITS`` bits and
  shifts right, rounding half up; a PReLU's negative slope is such a mantissa (data bits wide)
  with a shift of at most the layer's data bits;
- an elementwise add rescales both inputs to the output scale, then adds; a multiply multiplies
  the zero-point-free integers and rescales;
- Sigmoid (and the per-frame norm of ``--device-norms``) is exact on the dequantized input, then
  requantized (the hardware's piecewise approximation is not public);
- a value's bits are the widest of what its producer writes and its readers read
  (:func:`value_bits`): a 16-bit layer reads 16-bit inputs, so its producer writes 16 bits;
- equalization (the DFC's algorithm is not public) is cross-layer equalization as published
  (Nagel et al. 2019, "Data-Free Quantization"): for a conv whose output reaches a dense conv
  only through a positive-homogeneous activation (none, ReLU, or a single-slope PReLU), output
  channel c is divided by s_c = sqrt(r1_c / r2_c) and the next conv's input column c multiplied
  by it (r1, r2: the channel's weight peaks); exact in float (:func:`equalization_scales`);
- bias correction (the DFC's algorithm is not public) is empirical bias correction: each conv's
  mean output error per channel over the calibration tiles, with its inputs on their grids and
  its weights in integers, is added to its bias;
- a conv and the activation (PReLU, ReLU) that alone reads it are one DFC layer (the parsed
  conv layer holds its activation: ``compile.driver.resolve_layer_names`` maps both ONNX nodes
  to one layer), so the pre-activation value is not rounded to the layer's data bits; it is held
  at ``FUSED_ACTIVATION_BITS`` (``Scheme.fuse_activations``; the datapath's width is not public);
- bias correction averages over ``BIAS_CORRECTION_TILES`` calibration tiles (a seeded draw; a
  mean over 32 tiles of 256 frames is 8k values per channel), not all of them;
- percentile clipping takes the [100 - p, p] percentiles of a seeded sample of
  ``PERCENTILE_SAMPLE`` calibration values per tensor.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import numpy as np

ACCUMULATOR_BITS = {8: 32, 16: 48}
RESCALE_MANTISSA_BITS = 16
PERCENTILE_SAMPLE = 1 << 20
FUSED_ACTIVATION_BITS = 16
BIAS_CORRECTION_TILES = 32


class WeightGranularity(str, enum.Enum):
    """One weight scale per layer (the default, as public material shows) or per output channel."""

    PER_LAYER = "per_layer"
    PER_CHANNEL = "per_channel"


@dataclasses.dataclass(frozen=True)
class ModeBits:
    """A precision mode's bits: what the layer reads, its weights, what it writes."""

    input: int
    weight: int
    output: int


#: precision_mode -> bits (the model script's names; docs/hailo_facts.md "Model optimization").
PRECISION_MODES = {
    "a8_w8": ModeBits(8, 8, 8),
    "a16_w16": ModeBits(16, 16, 16),
    "a8_w4": ModeBits(8, 4, 8),
    "a8_w8_a16": ModeBits(8, 8, 16),
}
DEFAULT_MODE = "a8_w8"
#: Layer types that cannot change 8<->16 bits: their neighbours share their precision
#: (16bit_optimization notebook; docs/hailo_facts.md "Model optimization"). Our plan's op names.
SPREADS_16BIT = ("concat",)
#: The percentiles `noise` may clip activations at (``activation_clipping``, mode=percentile).
CLIP_PERCENTILES = (99.99, 99.999)


@dataclasses.dataclass(frozen=True)
class Scheme:
    """What the emulated DFC does besides rounding, each on or off as the model script says
    (``compile.model_script.optimization_lines``)."""

    weight_granularity: WeightGranularity = WeightGranularity.PER_LAYER
    equalization: bool = True
    bias_correction: bool = True
    #: activation clipping at [100 - p, p] percentiles of the calibration values; None: min/max
    clip_percentile: float | None = None
    #: every range's ends multiplied by this (emitted as ``force_range_out`` lines)
    headroom: float = 1.0
    fuse_activations: bool = True

    def __post_init__(self) -> None:
        if self.clip_percentile is not None and not 50.0 < self.clip_percentile < 100.0:
            raise ValueError(f"clip_percentile {self.clip_percentile}: a percentile in (50, 100)")
        if not self.headroom >= 1.0:
            raise ValueError(f"headroom {self.headroom}: at least 1")

    def to_json(self) -> dict:
        return {
            "weight_granularity": self.weight_granularity.value,
            "equalization": self.equalization,
            "bias_correction": self.bias_correction,
            "clip_percentile": self.clip_percentile,
            "headroom": self.headroom,
            "fuse_activations": self.fuse_activations,
        }

    @classmethod
    def from_json(cls, data: dict) -> Scheme:
        return cls(
            WeightGranularity(data["weight_granularity"]),
            bool(data["equalization"]),
            bool(data["bias_correction"]),
            data["clip_percentile"],
            float(data["headroom"]),
            bool(data.get("fuse_activations", True)),
        )


@dataclasses.dataclass(frozen=True)
class Grid:
    """An activation grid: real = (q - zero_point) * scale, q in [0, 2**bits - 1]."""

    scale: float
    zero_point: int
    bits: int

    @property
    def q_max(self) -> int:
        return 2**self.bits - 1


def clipped_range(
    minmax: tuple[float, float], percentiles: dict[float, tuple[float, float]] | None, scheme: Scheme
) -> tuple[float, float]:
    """The range a tensor is quantized over: min/max, or the scheme's percentiles, times its headroom."""
    lo, hi = minmax
    if scheme.clip_percentile is not None and percentiles is not None:
        lo, hi = percentiles[scheme.clip_percentile]
    return lo * scheme.headroom, hi * scheme.headroom


def percentile_ranges(values: np.ndarray, seed: int = 0) -> dict[float, tuple[float, float]]:
    """[100 - p, p] percentiles of a seeded sample of ``values`` for every p in ``CLIP_PERCENTILES``."""
    flat = np.asarray(values).reshape(-1)
    if flat.size > PERCENTILE_SAMPLE:
        flat = flat[np.random.default_rng(seed).integers(0, flat.size, PERCENTILE_SAMPLE)]
    levels = [q for p in CLIP_PERCENTILES for q in (100.0 - p, p)]
    found = np.percentile(flat, levels)
    return {p: (float(found[2 * k]), float(found[2 * k + 1])) for k, p in enumerate(CLIP_PERCENTILES)}


def equalization_scales(first_peaks: np.ndarray, second_peaks: np.ndarray) -> np.ndarray:
    """Cross-layer equalization's per-channel factors s_c = sqrt(r1_c / r2_c) (1 where either
    peak is 0): the first conv's output channel c is divided by s_c, the second's input column c
    multiplied by it, which leaves both with the peak sqrt(r1_c * r2_c)."""
    r1, r2 = np.asarray(first_peaks, np.float64), np.asarray(second_peaks, np.float64)
    safe = (r1 > 0) & (r2 > 0)
    return np.where(safe, np.sqrt(np.where(safe, r1, 1.0) / np.where(safe, r2, 1.0)), 1.0)


def activation_grid(lo: float, hi: float, bits: int) -> Grid:
    """The uint grid that covers [lo, hi] widened to include 0, with 0 exactly on it."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    q_max = 2**bits - 1
    scale = (hi - lo) / q_max if hi > lo else 1.0
    return Grid(scale, int(round(-lo / scale)), bits)


def quantize(x: np.ndarray, grid: Grid) -> np.ndarray:
    """Round half to even (numpy's rint), clip to the grid: integer-valued float64."""
    return np.clip(np.rint(np.asarray(x, np.float64) / grid.scale) + grid.zero_point, 0, grid.q_max)


def dequantize(q: np.ndarray, grid: Grid) -> np.ndarray:
    return (q - grid.zero_point) * grid.scale


def quantize_weights(
    weight: np.ndarray, bits: int, granularity: WeightGranularity = WeightGranularity.PER_LAYER
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric signed integers, one scale per tensor (per layer) or per output channel (axis 0).
    Returns (integer-valued float64 weights, scales shaped (C_out, 1, ...) to broadcast over axis 0)."""
    w = np.asarray(weight, np.float64)
    q_max = 2 ** (bits - 1) - 1
    axes = tuple(range(1, w.ndim))
    if granularity is WeightGranularity.PER_CHANNEL:
        peak = np.abs(w).max(axis=axes, keepdims=True)
    else:
        peak = np.full((len(w),) + (1,) * (w.ndim - 1), np.abs(w).max())
    scale = np.where(peak > 0, peak / q_max, 1.0)
    return np.clip(np.rint(w / scale), -q_max, q_max), scale


def saturate(acc: np.ndarray, bits: int) -> np.ndarray:
    limit = 2 ** (bits - 1)
    return np.clip(acc, -limit, limit - 1)


def mantissa_shift(
    multiplier: np.ndarray | float, mantissa_bits: int = RESCALE_MANTISSA_BITS
) -> tuple[np.ndarray, np.ndarray]:
    """``multiplier`` (> 0) as mantissa * 2**-shift with the mantissa in [2**(b-1), 2**b)."""
    m = np.asarray(multiplier, np.float64)
    exponent = np.floor(np.log2(np.where(m > 0, m, 1.0)))
    shift = (mantissa_bits - 1) - exponent
    mantissa = np.rint(m * 2.0**shift)
    return np.where(m > 0, mantissa, 0.0), shift


def rescale(acc: np.ndarray, multiplier: np.ndarray | float) -> np.ndarray:
    """round_half_up(acc * mantissa / 2**shift): the integer rescale to the output grid."""
    mantissa, shift = mantissa_shift(multiplier)
    return np.floor(acc * mantissa / 2.0**shift + 0.5)


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
    return float(np.clip(np.rint(slope * 2.0**shift), -limit, limit - 1) / 2.0**shift)
