"""The receptive-field window executor: a ``--rf-windows`` plan (``plan.rf_windows``) run hop by
hop, one device call per span, equal to the offline causal model to the last sample.

Per hop the host slides the audio window, cuts each span's inputs from the exact frames kept at
the span boundaries (histories), makes the valid mask, runs the spans in order at the window
width W, keeps the last frames of each output (the new, exact ones) and overlap-adds the
decoder's frames. ``finish(length)`` computes the frames the offline model makes from the last,
partial hop and releases the overlap-add tail, so the whole output equals the offline one.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from ..plan.host_steps import OverlapAdd, StackSources, overlap_add
from ..plan.names import WAV
from ..plan.passes.rf_windows import VALID
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage


class _History:
    """The exact frames of one tensor, (C, n), the first at absolute frame ``start``."""

    def __init__(self, channels: int) -> None:
        self.data = np.zeros((channels, 0), np.float32)
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + self.data.shape[-1]

    def append(self, frames: np.ndarray) -> None:
        self.data = np.concatenate([self.data, frames], axis=-1)

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Frames [lo, hi) as (C, hi - lo); before the stream (or the kept history) zeros:
        those frames only reach outputs the window discards, or are masked (``VALID``)."""
        out = np.zeros((self.data.shape[0], hi - lo), np.float32)
        first, last = max(lo, self.start), min(hi, self.end)
        if last > first:
            out[:, first - lo : last - lo] = self.data[:, first - self.start : last - self.start]
        return out

    def keep_from(self, frame: int) -> None:
        cut = min(max(frame - self.start, 0), self.data.shape[-1])
        if cut:
            self.data = self.data[:, cut:].copy()
            self.start += cut


class WindowStreamingExecutor:
    """Runs a receptive-field window plan hop by hop through ``backend``.

    ``push(samples)`` takes whole hops and returns the output samples that became final, shape
    (n_src, n); ``finish(length)`` returns the rest, so that everything returned is the offline
    model's output for ``length`` input samples. Output lags input by ``delay`` samples.
    """

    def __init__(self, plan: StagePlan, backend, hop: int) -> None:
        config = plan.config
        if plan.rf_window is None:
            raise UserError("this plan has no receptive-field windows: build it with --rf-windows")
        if hop != plan.options.rf_hop_frames * config.stride:
            raise UserError(
                f"the plan's windows are for hops of {plan.options.rf_hop_frames * config.stride} samples, not {hop}"
            )
        self.plan, self.backend, self.hop = plan, backend, hop
        self.hop_frames, self.width = plan.options.rf_hop_frames, plan.rf_window
        self.tile_w = self.width
        self.spans = [s for s in plan.steps if isinstance(s, Stage)]
        self.stack = next(s for s in plan.steps if isinstance(s, StackSources))
        self.overlap = next(s for s in plan.steps if isinstance(s, OverlapAdd))
        backend.prepare(plan, self.width)
        self.audio = _History(1)
        self.histories: dict[str, _History] = {}
        self.made = 0  # frames computed
        self.samples_in = 0
        self.samples_out = 0
        self.stage_calls = 0
        self._tail = np.zeros((config.n_src, 0), np.float32)

    @property
    def device_seconds(self) -> float:
        """Seconds spent in the backend's stage calls so far (the timed backend ``Run.streamer`` gives)."""
        return self.backend.seconds

    @property
    def delay(self) -> int:
        config = self.plan.config
        return math.ceil(config.kernel_size / config.stride) * config.stride - config.stride

    def _computable(self, samples: int) -> int:
        config = self.plan.config
        return (samples - config.kernel_size) // config.stride + 1 if samples >= config.kernel_size else 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size % self.hop:
            raise UserError(f"push {samples.size} samples: a multiple of the hop ({self.hop}) is needed")
        out = []
        for first in range(0, samples.size, self.hop):  # hop by hop: a window holds one hop's new frames
            self.audio.append(samples[None, first : first + self.hop])
            self.samples_in += self.hop
            out.append(self._advance(self._computable(self.samples_in)))
        return np.concatenate(out, axis=-1) if out else np.zeros((self.plan.config.n_src, 0), np.float32)

    def finish(self, samples: np.ndarray | None = None) -> np.ndarray:
        """The end of the input: the last ``samples`` (fewer than a hop; none when the input was
        whole hops), the frames the offline model computes from them, the overlap-add tail,
        then zeros up to the input's length (Asteroid's pad_x_to_y): after it, everything
        returned is the offline model's output for the whole input."""
        last = np.zeros(0, np.float32) if samples is None else np.asarray(samples, np.float32).reshape(-1)
        if last.size >= self.hop:
            raise UserError(f"finish takes the last {last.size} samples: fewer than a hop ({self.hop}); push the rest")
        length, returned = self.samples_in + last.size, self.samples_out
        emitted = []
        if last.size:
            padded = np.zeros((1, self.hop), np.float32)
            padded[0, : last.size] = last
            self.audio.append(padded)
            self.samples_in += self.hop
            emitted.append(self._advance(self._computable(length)))
        emitted.append(self._tail)
        self._tail = np.zeros_like(self._tail)
        rest = np.concatenate(emitted, axis=-1)
        out = np.zeros((rest.shape[0], max(length - returned, 0)), np.float32)
        keep = min(out.shape[-1], rest.shape[-1])
        out[:, :keep] = rest[:, :keep]
        self.samples_out = length
        return out

    def _advance(self, computable: int) -> np.ndarray:
        """Computes frames [made, computable) (at most a hop's) and returns the samples that became final."""
        n_src = self.plan.config.n_src
        new = computable - self.made
        if new <= 0:
            return np.zeros((n_src, 0), np.float32)
        if new > self.hop_frames:
            raise RuntimeError(f"{new} new frames in one window of {self.hop_frames} exact ones")
        lo = computable - self.width
        produced = {}
        for span in self.spans:
            outputs = self.backend.run_stage(span, self._inputs(span, lo, produced))
            self.stage_calls += 1
            for port in span.outputs:
                frames = outputs[port.name][0, :, 0, -new:]  # the exact ones: the window's last frames
                produced[port.name] = outputs[port.name][0, :, 0]
                self.histories.setdefault(port.name, _History(port.channels)).append(frames)
        frames = np.stack([self.histories[name].data[:, -new:] for name in self.stack.inputs])  # (G, L, new)
        self.made = computable
        self._drop(lo + self.hop_frames)
        return self._overlap_add(frames)

    def _inputs(self, span: Stage, lo: int, produced: dict) -> dict[str, np.ndarray]:
        config = self.plan.config
        batch = {}
        for port in span.inputs:
            if port.name == WAV:
                start = lo * config.stride
                width = port.geometry.tile_input_width(self.width)
                batch[WAV] = self.audio.window(start, start + width)[None, :, None, :]
            elif port.name == VALID:
                valid = (np.arange(lo, lo + self.width) >= 0).astype(np.float32)
                batch[VALID] = valid[None, None, None, :]
            else:
                batch[port.name] = self.histories[port.name].window(lo, lo + self.width)[None, :, None, :]
        return batch

    def _overlap_add(self, frames: np.ndarray) -> np.ndarray:
        """New decoder frames (G, L, n) -> the samples that became final; the overlap waits in a tail."""
        stride = self.overlap.stride
        acc = overlap_add(frames, stride)[:, 0]
        acc[:, : self._tail.shape[-1]] += self._tail
        done = frames.shape[-1] * stride
        self._tail = acc[:, done:].copy()
        self.samples_out += done
        return acc[:, :done]

    def _drop(self, oldest_next_window: int) -> None:
        """Keeps only the frames the next hop's windows read."""
        config = self.plan.config
        self.audio.keep_from(oldest_next_window * config.stride)
        for history in self.histories.values():
            history.keep_from(oldest_next_window)
