"""Host steps between stages: whole-utterance work a fixed-shape NPU stage cannot do.

Every tensor in the executor's store is a float32 array shaped (G, C, length): G groups
(1, or n_src for per-source tensors), C channels, length frames or samples.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..model.config import MaskAct, NormType
from . import host_math

Store = Mapping[str, np.ndarray]


class HostWork:
    """What every host step has: the tensors it reads and writes, and ``apply(store)``, its
    whole-tensor form. The executors run ``apply`` too (on whole tensors when tiled; on the frames
    new since the last hop when streaming) unless the class names a form of its own,
    ``tiled_form`` / ``stream_form`` = "own", registered in ``runtime.host_forms``. A new host
    step whose output frame depends on the same input frame only needs nothing else."""

    tiled_form: ClassVar[str] = "whole"
    stream_form: ClassVar[str] = "per_frame"

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.input,)  # type: ignore[attr-defined]

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.output,)  # type: ignore[attr-defined]


def norm_layer(norm: NormType, gamma: np.ndarray, beta: np.ndarray):
    """The baseline's own norm layer with these affine parameters."""
    import torch

    from ..model.convtasnet import NORM_CLASSES

    layer = NORM_CLASSES[norm](gamma.shape[0])
    with torch.no_grad():
        layer.gamma.copy_(torch.from_numpy(gamma))
        layer.beta.copy_(torch.from_numpy(beta))
    return layer.eval()


@dataclasses.dataclass(frozen=True, eq=False)
class Normalize(HostWork):
    """gLN / cLN / cgLN with the layer's gamma/beta: produces the tensor the next conv sees.

    The statistics need every frame (gLN) or every earlier frame (cgLN), so they run here,
    between the stage that made ``input`` over all tiles and the stage that reads ``output``.
    gLN takes its float32 statistics with the layer's own kernels, reduced as the reference
    reduces them (float64 statistics are closer to exact math but, over 10 s of audio, land up
    to 1.5e-5 away from the float32 reference's), folded into one multiply-add; cLN's per-frame
    statistics over channels are short sums (``channel_norm``); cgLN runs the baseline's layer.
    """

    tiled_form: ClassVar[str] = "own"
    stream_form: ClassVar[str] = "own"

    input: str
    output: str
    norm: NormType
    gamma: np.ndarray  # (C,)
    beta: np.ndarray  # (C,)

    @functools.cached_property
    def layer(self):
        """The baseline's layer with this step's gamma/beta, built once per step, not per call
        (building the module every call was a large share of a streaming hop's host time:
        docs/benchmarks.md, "Host path decisions")."""
        return norm_layer(self.norm, self.gamma, self.beta)

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(store[self.input])
        if self.norm is NormType.CLN:
            return {self.output: channel_norm(x, self.gamma, self.beta)}
        if self.norm is NormType.GLN:
            return {self.output: _global_norm(x, self.gamma, self.beta)}
        if host_math.kernels() == "numpy":
            return {self.output: host_math.cumulative_norm(x, self.gamma, self.beta)[0]}
        import torch

        with torch.no_grad():
            return {self.output: self.layer(torch.from_numpy(x)).numpy()}


def channel_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """cLN on the host: per frame, mean and biased variance over channels (two passes, each a
    matrix product with a row of 1/C), then gamma/beta. Shape (G, C, T) kept, float32.

    Not the layer's torch kernels: a streaming hop normalizes a few frames per norm, where each
    torch call has a fixed cost whatever its size; a reduction over channels is a strided one, and
    a matrix product does it in one BLAS call, faster on short and long inputs alike
    (docs/benchmarks.md, "Host path decisions"). Both are float32 roundings of the same sums (the stream and
    plan tests hold it to the contract against the model's layer)."""
    from ..model.config import NORM_EPS

    average = np.full((1, x.shape[1]), 1.0 / x.shape[1], np.float32)
    centred = x - average @ x  # (G, C, T) - (G, 1, T)
    scale = 1.0 / np.sqrt(average @ np.square(centred) + np.float32(NORM_EPS))
    out = centred * scale
    out *= gamma.reshape(-1, 1)
    out += beta.reshape(-1, 1)
    return out


def _global_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """gLN applied in one fused multiply-add pass, ``x * a + b`` (``gln_fold``). Shape (G, C, T) kept."""
    mean, var = host_math.gln_moments(x)
    scale, shift = gln_fold(gamma, beta, mean, var)
    out = np.empty(x.shape, np.float32)
    host_math.addcmul_into(out, x, scale, shift)
    return out


def gln_fold(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gLN's output as ``x * a + b`` per group and channel: a = gamma / std, b = beta - mean * a.
    mean, var: (G, 1, 1) float32 arrays; returns (a, b), float32 arrays (G, C, 1). In numpy: the
    same correctly rounded float32 operations torch runs, without its per-call cost (a gLN per
    block, twice, in a plan whose host work is otherwise small).

    The layer computes ``(x - mean) / std * gamma + beta`` in four passes and three temporaries;
    the two forms differ by float32 rounding of the folded constants (an ulp of ``mean * a``,
    far inside the contract; the parity grid and margins measure it). Host steps are most of the
    stitched path's own time (bench), and these tensors are the largest it touches.
    """
    from ..model.config import NORM_EPS

    scale = gamma.reshape(1, -1, 1) / np.sqrt(var + np.float32(NORM_EPS))
    return scale, beta.reshape(1, -1, 1) - mean * scale


@dataclasses.dataclass(frozen=True)
class AddTensors(HostWork):
    """Elementwise ``a + b`` (the skip-connection sum, in the reference's order)."""

    tiled_form: ClassVar[str] = "own"

    a: str
    b: str
    output: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        return {self.output: store[self.a] + store[self.b]}


@dataclasses.dataclass(frozen=True)
class Alias(HostWork):
    """Gives an existing tensor a second name the runbook's users read."""

    tiled_form: ClassVar[str] = "own"

    input: str
    output: str

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        return {self.output: store[self.input]}


@dataclasses.dataclass(frozen=True)
class SplitSources(HostWork):
    """(1, n_src * N, F) source-major channels -> (n_src, N, F), like the masker's view()."""

    tiled_form: ClassVar[str] = "own"

    input: str
    output: str
    n_src: int

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        x = store[self.input]
        return {self.output: x.reshape(self.n_src, x.shape[1] // self.n_src, x.shape[2])}


@dataclasses.dataclass(frozen=True)
class ActivateMask(HostWork):
    """Mask nonlinearity on (n_src, N, F); softmax needs all sources, hence on the host."""

    tiled_form: ClassVar[str] = "own"

    input: str
    output: str
    act: MaskAct

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        return {self.output: self.activate(store[self.input])}

    def activate(self, x: np.ndarray, in_place: bool = False) -> np.ndarray:
        """The nonlinearity on any float32 array whose axis 0 is the source, as float32; with
        ``in_place``, ReLU overwrites ``x`` (a fresh array that size costs its page faults)."""
        if self.act is MaskAct.RELU:
            out = np.maximum(x, 0, out=x if in_place else None)
        elif self.act is MaskAct.SIGMOID:
            out = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
        elif self.act is MaskAct.SOFTMAX:
            shifted = np.exp(x.astype(np.float64) - x.max(axis=0, keepdims=True))
            out = shifted / shifted.sum(axis=0, keepdims=True)
        else:
            out = x
        return np.asarray(out, dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class OverlapAdd(HostWork):
    """Frames (G, L, F) -> waveform (G, 1, (F - 1) * stride + L): the decoder's transposed conv
    after its per-frame 1x1 projection."""

    stream_form: ClassVar[str] = "own"

    input: str
    output: str
    stride: int

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        return {self.output: overlap_add(store[self.input], self.stride)}


def overlap_add(frames: np.ndarray, stride: int) -> np.ndarray:
    """Frames (G, L, F) -> waveform (G, 1, (F - 1) * stride + L), frame f added at f * stride (the
    offline decoder, and the streaming one before its tail is added)."""
    groups, frame_len, n_frames = frames.shape
    wav = np.zeros((groups, 1, (n_frames - 1) * stride + frame_len), dtype=np.float32)
    # One slab per hop offset: frames overlap L/S times, so this loops L/S times, not F times.
    for offset in range(0, frame_len, stride):
        hop = frames[:, offset : offset + stride, :]  # (G, <=S, F)
        if hop.shape[1] < stride:  # L not a multiple of S: the last slab is short
            hop = np.pad(hop, ((0, 0), (0, stride - hop.shape[1]), (0, 0)))
        flat = hop.transpose(0, 2, 1).reshape(groups, -1)  # frame-major samples
        end = min(wav.shape[-1], offset + flat.shape[1])
        wav[:, 0, offset:end] += flat[:, : end - offset]
    return wav


@dataclasses.dataclass(frozen=True)
class FitLength(HostWork):
    """Right-pads with zeros or trims to the mixture's length (Asteroid's pad_x_to_y)."""

    stream_form: ClassVar[str] = "own"

    input: str
    output: str
    length_of: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.input, self.length_of)

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        x = store[self.input]
        length = store[self.length_of].shape[-1]
        out = np.zeros(x.shape[:-1] + (length,), dtype=np.float32)
        keep = min(length, x.shape[-1])
        out[..., :keep] = x[..., :keep]
        return {self.output: out}


@dataclasses.dataclass(frozen=True)
class SplitChannels(HostWork):
    """Cuts a tensor's channels into consecutive blocks (views; no copy). For channel blocks."""

    tiled_form: ClassVar[str] = "own"

    input: str
    outputs: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def writes(self) -> tuple[str, ...]:
        return self.outputs

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        x = store[self.input]
        bounds = np.cumsum((0,) + self.sizes)
        return {name: x[:, lo:hi] for name, lo, hi in zip(self.outputs, bounds[:-1], bounds[1:], strict=False)}


@dataclasses.dataclass(frozen=True)
class AssembleBlocks(HostWork):
    """A split conv's output: partial sums added over input blocks, then output blocks
    concatenated along channels. ``partials[k][j]`` is output block k from input block j."""

    tiled_form: ClassVar[str] = "own"

    partials: tuple[tuple[str, ...], ...]
    output: str

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(name for row in self.partials for name in row)

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        rows = [[store[name] for name in row] for row in self.partials]
        if len(rows) == 1 and len(rows[0]) == 1:
            return {self.output: rows[0][0]}
        out = np.empty(
            rows[0][0].shape[:1] + (sum(row[0].shape[1] for row in rows),) + rows[0][0].shape[2:], np.float32
        )
        assemble_rows(rows, out)
        return {self.output: out}


def assemble_rows(rows: list[list[np.ndarray]], out: np.ndarray) -> None:
    """Channel blocks into ``out``: row k's partial sums added (``add_partials``), rows placed one
    after another along axis 1. Shapes: rows[k][j] (N, C_k, ...), out (N, sum C_k, ...)."""
    lo = 0
    for row in rows:
        width = row[0].shape[1]
        add_partials(row, out[:, lo : lo + width])
        lo += width


#: Values per chunk of a float64 partial sum: its accumulator stays in the core's L2 cache.
_PARTIAL_SUM_CHUNK = 1 << 17


def add_partials(parts: list[np.ndarray], out: np.ndarray) -> None:
    """``out`` = the float64 sum of ``parts`` in their order, rounded once to float32: splitting a
    dot product must not add rounding of its own. Two parts need no float64: float32 addition is
    already that rounded sum (float64 has 53 >= 2 * 24 + 2 bits, so rounding twice through it
    equals rounding once, Figueroa 1995). Shapes: each part and ``out`` (N, C, ...), any strides."""
    if len(parts) == 1:
        out[...] = parts[0]
        return
    if len(parts) == 2:
        np.add(parts[0], parts[1], out=out)
        return
    step = max(1, _PARTIAL_SUM_CHUNK * out.shape[0] // max(out.size, 1))
    for lo in range(0, out.shape[0], step):
        host_math.sum64_into(parts, out, lo, step)


@dataclasses.dataclass(frozen=True, eq=False)
class GlnFold(HostWork):
    """gLN with its statistics taken inside the stages (``--gln-in-stages``, ``plan.gln_in_stages``):
    the stage that makes ``input`` also outputs its per-tile moments (per tile and channel, the
    mean and the sum of squares: ``tile_mean``, ``tile_sum_sq``); this step combines them into gLN's
    per-channel affine (``scale``, ``shift``; (G, C, 1) each) and the stage that reads ``output``
    applies it to ``input`` itself. ``output`` is never a stored tensor: it names the normalized
    tensor that stage makes.

    ``apply`` (whole tensors) takes the layer's own statistics of ``input``; the stitched executor
    combines the moments instead (``gln_from_tile_moments``), which costs (tiles x channels) host
    work instead of a pass over the tensor."""

    tiled_form: ClassVar[str] = "own"

    input: str
    output: str
    gamma: np.ndarray  # (C,)
    beta: np.ndarray  # (C,)
    tile_mean: str
    tile_sum_sq: str

    @property
    def scale(self) -> str:
        return f"{self.output}.scale"

    @property
    def shift(self) -> str:
        return f"{self.output}.shift"

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.input, self.tile_mean, self.tile_sum_sq)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.scale, self.shift)

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        mean, var = host_math.gln_moments(np.ascontiguousarray(store[self.input]))
        return self.affine(mean, var)

    def affine(self, mean: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
        """The step's outputs (scale and shift, float32 (G, C, 1)) from gLN's statistics, (G, 1, 1) float32."""
        scale, shift = gln_fold(self.gamma, self.beta, mean, var)
        return {self.scale: scale, self.shift: shift}


def gln_from_tile_moments(
    tile_mean: np.ndarray, tile_sum_sq: np.ndarray, tile_w: int, last_tile: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """gLN's mean and biased variance per group, (G, 1, 1) float32 arrays, from per-tile moments.

    tile_mean, tile_sum_sq: (G, n_tiles, C), per tile and channel the mean over its ``tile_w``
    frames and the sum of their squares, as the stage computed them (float32); last_tile: (G, C, k),
    the last tile's k <= tile_w frames inside the utterance. The last tile's moments are taken here
    from its frames: the stage's include the padding columns past the utterance. The sums are added
    up in float64 and var = E[x^2] - mean^2 there; what is left is the stage's float32 rounding of
    each tile's sums (about 1e-7 of E[x^2] per tile), under 1e-6 of the variance for gLN inputs,
    whose mean and spread are of one order. The parity grid and margins measure it."""
    groups, n_tiles, channels = tile_mean.shape
    last = last_tile.astype(np.float64)
    kept = last.shape[-1]
    frames = channels * ((n_tiles - 1) * tile_w + kept)
    total = tile_w * tile_mean[:, :-1].sum(axis=(1, 2), dtype=np.float64) + last.sum(axis=(1, 2))
    squares = tile_sum_sq[:, :-1].sum(axis=(1, 2), dtype=np.float64) + np.square(last).sum(axis=(1, 2))
    grand = total / frames
    var = np.maximum(squares / frames - np.square(grand), 0.0)
    return grand.astype(np.float32).reshape(groups, 1, 1), var.astype(np.float32).reshape(groups, 1, 1)


@dataclasses.dataclass(frozen=True)
class StackSources(HostWork):
    """One (1, C, F) tensor per source -> (n_src, C, F): the per-source outputs of a
    receptive-field span (``plan.rf_windows``) as the decoder's groups."""

    inputs: tuple[str, ...]
    output: str

    @property
    def reads(self) -> tuple[str, ...]:
        return self.inputs

    def apply(self, store: Store) -> dict[str, np.ndarray]:
        return {self.output: np.concatenate([store[name] for name in self.inputs], axis=0)}


HostStep = (
    Normalize
    | AddTensors
    | Alias
    | SplitSources
    | ActivateMask
    | OverlapAdd
    | FitLength
    | SplitChannels
    | AssembleBlocks
    | GlnFold
    | StackSources
)
