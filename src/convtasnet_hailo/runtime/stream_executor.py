"""The streaming executor: a causal model's plan run hop by hop, equal to the offline model.

Audio arrives in hops of ``hop`` samples (a multiple of the encoder stride S); every stage runs
on tiles of ``tile_w = hop / S`` frames, the fixed shape its export was made for. Each tensor
keeps only the frames later steps still read: the encoder's window overlap, each dilated
depthwise conv's (P-1)*d past frames, and the frames of a tile that is recomputed. Host steps
work per frame (cLN, mask activation, skip sums), keep running sums (cgLN) or an overlap-add
tail (decoder). Nothing reads the future, so hop k's output is final when hop k is done.

Tiles end at the newest computable frame (the encoder lags L - S samples behind the audio, so a
tile may start one or more frames before the last hop's end: those frames are recomputed and
dropped), which keeps the delay at the model's own window, not a whole extra hop. Frames before
the stream's start are the reference's zero padding.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from ..model.config import NormType
from ..plan.host_steps import OverlapAdd
from ..plan.options import PlanPath
from ..plan.stage_plan import StagePlan
from ..plan.stages import Geometry, Stage
from .host_forms import run_streaming


class _Frames:
    """The frames of one tensor still needed: (G, C, n) float32, the first at absolute ``start``."""

    def __init__(self, groups: int, channels: int) -> None:
        self.data = np.zeros((groups, channels, 0), np.float32)
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + self.data.shape[-1]

    def append(self, frames: np.ndarray) -> None:
        self.data = (
            np.concatenate([self.data, frames.astype(np.float32, copy=False)], axis=-1)
            if self.data.shape[-1]
            else np.ascontiguousarray(frames, np.float32)
        )

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Frames [lo, hi); indices before the stream (negative) are zeros, the reference's padding."""
        if lo < self.start and lo >= 0:
            raise RuntimeError(f"frames from {lo} were dropped (kept from {self.start})")
        out = np.zeros(self.data.shape[:2] + (hi - lo,), np.float32)
        first = max(lo, 0)
        if hi > first:
            out[..., first - lo :] = self.data[..., first - self.start : hi - self.start]
        return out

    def drop_before(self, index: int) -> None:
        cut = min(max(index - self.start, 0), self.data.shape[-1])
        if cut:
            self.data = self.data[..., cut:].copy()
            self.start += cut


def computable_frames(geometry: Geometry, available: int) -> int:
    """Output frames a causal input geometry can produce from ``available`` input frames."""
    needed = available - geometry.span + geometry.pad_left
    return needed // geometry.stride + 1 if needed >= 0 else 0


def check_streamable(plan: StagePlan) -> None:
    config = plan.config
    if plan.path is not PlanPath.FULL_CHAIN:
        raise UserError("streaming runs the full-chain plan")
    if plan.float_only_options:
        raise UserError(
            f"streaming runs stages hop by hop, not the tiles {' and '.join(plan.float_only_options)} "
            "rearrange: drop them (a hop's host work is per-frame already)"
        )
    if config.norm_type is NormType.GLN or not config.causal:
        raise UserError(
            f"this model is not causal ({config.norm_type.value}"
            f"{', causal=False' if not config.causal else ''}): its norms or convs read the whole "
            "utterance or future frames, so it cannot stream exactly. Use a causal model (cLN or cgLN, "
            "causal=True), or `separate` for offline separation"
        )
    for step in plan.steps:
        if isinstance(step, Stage):
            for port in step.inputs:
                if port.geometry.span - 1 - port.geometry.pad_left > 0 and port.geometry.stride == 1:
                    raise UserError(f"stage {step.name} reads future frames of {port.name}; it cannot stream")


class StreamingExecutor:
    """Runs a causal model's full-chain plan hop by hop through ``backend``.

    ``push(samples)`` takes the next ``hop`` samples (or any multiple of it) and returns the
    output samples that became final, shape (n_src, n); ``delay`` samples of output lag the input
    (the encoder's window minus its stride), always the same.
    """

    def __init__(self, plan: StagePlan, backend, hop: int) -> None:
        check_streamable(plan)
        stride = plan.config.stride
        if hop < stride or hop % stride:
            raise UserError(f"hop of {hop} samples: use a multiple of the encoder stride ({stride} samples)")
        self.plan, self.backend, self.hop = plan, backend, hop
        self.tile_w = hop // stride
        backend.prepare(plan, self.tile_w)
        self.frames: dict[str, _Frames] = {}
        self.made: dict[str, int] = {}
        self.sums: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # cgLN running sums per output
        self.tails: dict[str, np.ndarray] = {}  # overlap-add tails per output
        self.stage_calls = 0
        self.samples_in = 0
        self._frame_limit: int | None = None  # the encoder frames the offline model makes (``finish``)
        self._consumers = self._consumer_map()

    @property
    def device_seconds(self) -> float:
        """Seconds spent in the backend's stage calls so far (the timed backend ``Run.streamer`` gives)."""
        return self.backend.seconds

    @property
    def delay(self) -> int:
        """Samples by which the output lags the input: the encoder window's overlap, rounded up to
        whole strides (the last frame a sample belongs to must be complete)."""
        config = self.plan.config
        return math.ceil(config.kernel_size / config.stride) * config.stride - config.stride

    def _consumer_map(self) -> dict[str, list]:
        consumers: dict[str, list] = {}
        for step in self.plan.steps:
            if isinstance(step, Stage):
                for port in step.inputs:
                    consumers.setdefault(port.name, []).append((step, port.geometry))
            else:
                for name in step.reads:
                    consumers.setdefault(name, []).append((step, None))
        return consumers

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size % self.hop:
            raise UserError(f"push {samples.size} samples: a multiple of the hop ({self.hop}) is needed")
        wav = self.frames.setdefault("wav", _Frames(1, 1))
        wav.append(samples[None, None])
        self.made["wav"] = wav.end
        self.samples_in += samples.size
        out_before = self.made.get("final_output", 0)
        for step in self.plan.steps:
            if isinstance(step, Stage):
                self._run_stage(step)
            else:
                run_streaming(self, step)
        final = self.frames.get("final_output")
        groups = self.plan.config.n_src
        emitted = (
            final.window(out_before, self.made["final_output"])
            if final is not None
            else np.zeros((groups, 1, 0), np.float32)
        )
        self._drop_unneeded()
        return emitted[:, 0]

    def finish(self, samples: np.ndarray | None = None) -> np.ndarray:
        """The end of the input: the last ``samples`` (fewer than a hop), only the encoder frames
        the offline model computes from the real input, the overlap-add tail, then zeros up to the
        input's length (Asteroid's pad_x_to_y): after it, everything returned is the offline
        model's output for the whole input."""
        last = np.zeros(0, np.float32) if samples is None else np.asarray(samples, np.float32).reshape(-1)
        if last.size >= self.hop:
            raise UserError(f"finish takes the last {last.size} samples: fewer than a hop ({self.hop}); push the rest")
        config = self.plan.config
        length, returned = self.samples_in + last.size, self.made.get("final_output", 0)
        self._frame_limit = (length - config.kernel_size) // config.stride + 1
        pieces = []
        if last.size:
            padded = np.zeros(self.hop, np.float32)
            padded[: last.size] = last
            pieces.append(self.push(padded))
        overlap = next(step for step in self.plan.steps if isinstance(step, OverlapAdd))
        pieces.append(self.tails.pop(overlap.output, np.zeros((config.n_src, 1, 0), np.float32))[:, 0])
        rest = np.concatenate(pieces, axis=-1)
        out = np.zeros((config.n_src, max(length - returned, 0)), np.float32)
        keep = min(out.shape[-1], rest.shape[-1])
        out[:, :keep] = rest[:, :keep]
        return out

    # -- stages --------------------------------------------------------------------------------

    def _run_stage(self, stage: Stage) -> None:
        if any(p.name not in self.frames for p in stage.inputs):
            return
        count = min(computable_frames(p.geometry, self.frames[p.name].end) for p in stage.inputs)
        if self._frame_limit is not None and any(p.name == "wav" for p in stage.inputs):
            count = min(count, self._frame_limit)
        made = self.made.get(stage.outputs[0].name, 0)
        if count <= made:
            return
        starts = []
        start = count - self.tile_w
        while start + self.tile_w > made:
            starts.insert(0, start)
            start -= self.tile_w
        groups = max(self.frames[p.name].data.shape[0] for p in stage.inputs)
        batch = {}
        for port in stage.inputs:
            width = port.geometry.tile_input_width(self.tile_w)
            source = self.frames[port.name]
            windows = [
                source.window(port.geometry.tile_input_start(s), port.geometry.tile_input_start(s) + width)
                for s in starts
            ]  # each (G_port, C, width)
            tiles = np.stack(windows, axis=1)  # (G_port, n_tiles, C, width)
            if tiles.shape[0] != groups:
                tiles = np.repeat(tiles, groups, axis=0)
            batch[port.name] = tiles.reshape(groups * len(starts), tiles.shape[2], 1, width)
        outputs = self.backend.run_stage(stage, batch)
        self.stage_calls += 1
        for port in stage.outputs:
            tiles = outputs[port.name].reshape(groups, len(starts), port.channels, self.tile_w)
            joined = tiles.transpose(0, 2, 1, 3).reshape(groups, port.channels, -1)  # frames starts[0]..count
            self.emit(port.name, joined[..., made - starts[0] :], groups, port.channels)

    def emit(self, name: str, frames: np.ndarray, groups: int, channels: int) -> None:
        """Appends new frames (G, C, n) of ``name`` (a stage's or a host step's form's output)."""
        self.frames.setdefault(name, _Frames(groups, channels)).append(frames)
        self.made[name] = self.frames[name].end

    # -- memory --------------------------------------------------------------------------------

    def _drop_unneeded(self) -> None:
        """Keeps of each tensor only what the next hop's steps read (halo and recomputed frames)."""
        for name, frames in self.frames.items():
            needs = []
            for step, geometry in self._consumers.get(name, []):
                made = self.made.get(step.writes[0], 0)
                if geometry is None:
                    needs.append(made // step.stride if isinstance(step, OverlapAdd) else made)
                else:
                    needs.append(geometry.tile_input_start(made - self.tile_w))
            keep_from = min(needs) if needs else frames.end
            frames.drop_before(max(keep_from, 0))


def hops_of(wav: np.ndarray, hop: int, flush_hops: int = 0) -> list[np.ndarray]:
    """``wav`` cut into hops of ``hop`` samples, the last zero-padded, plus ``flush_hops`` of silence."""
    count = math.ceil(len(wav) / hop) + flush_hops
    padded = np.zeros(count * hop, np.float32)
    padded[: len(wav)] = wav
    return [padded[i * hop : (i + 1) * hop] for i in range(count)]


def stream_whole(executor: StreamingExecutor, wav: np.ndarray) -> np.ndarray:
    """Pushes ``wav`` hop by hop (zero-padded to whole hops) and returns everything emitted,
    shape (n_src, emitted samples); emitted sample n is the offline output's sample n."""
    return np.concatenate([executor.push(block) for block in hops_of(wav, executor.hop)], axis=-1)


def stream_file(executor, wav: np.ndarray) -> np.ndarray:
    """The whole output for ``wav`` from either streaming executor: whole hops pushed, the rest
    given to ``finish``; (n_src, len(wav)), equal to the offline model's output on every sample."""
    whole = len(wav) // executor.hop * executor.hop
    pieces = [executor.push(wav[i : i + executor.hop]) for i in range(0, whole, executor.hop)]
    pieces.append(executor.finish(wav[whole:]))
    return np.concatenate(pieces, axis=-1)
