"""Reading a long recording block by block: the checks :func:`~.io.load_audio` makes, in one
pass that keeps no samples (:func:`scan_audio`), then the same mono float32 samples at the
model's rate, block after block (:func:`model_rate_blocks`), so that memory does not grow with
the file. The samples equal ``load_audio``'s: a stereo frame is averaged as it averages it, and
soxr's stream resampler gives what its one-shot resampler gives (checked in
tests/separation/test_streamed.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UserError
from .arrays import MAX_SAMPLE
from .io import SILENCE_RMS, _beyond_audio, _cancelling, _non_finite, _too_many_channels, open_sound_file

#: Frames read at a time (per channel): 64k frames, 512 KiB of float32 stereo.
BLOCK_FRAMES = 1 << 16


@dataclasses.dataclass(frozen=True)
class ScannedAudio:
    """A checked recording not held in memory: ``frames`` mono samples at ``rate`` once read
    (:func:`model_rate_blocks`); ``notes`` say what reading does to the file (as ``LoadedAudio``'s)."""

    path: Path
    frames: int
    rate: int
    source_rate: int
    source_channels: int
    notes: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _blocks(path: Path, rate: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frames, mono)`` per block: the file's (k, C) float32 frames and their mono average at
    ``rate`` (resampled by soxr's stream resampler, VHQ, as ``io.resample``)."""
    import soundfile as sf

    with open_sound_file(path) as handle:
        stream = None
        if handle.samplerate != rate:
            import soxr

            stream = soxr.ResampleStream(handle.samplerate, rate, 1, dtype="float32", quality="VHQ")
        while True:
            try:
                data = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise UserError(f"cannot read {path} ({str(exc).splitlines()[0]}); repair or re-export it") from None
            last = len(data) < BLOCK_FRAMES
            mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
            if stream is not None:
                mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
            yield data, np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                return


def model_rate_blocks(audio: ScannedAudio) -> Iterator[np.ndarray]:
    """The scanned file's mono float32 samples at its model rate, block after block ((k,) each)."""
    for _, mono in _blocks(audio.path, audio.rate):
        if len(mono):
            yield mono


@dataclasses.dataclass
class _Tally:
    """What the scan accumulates: frames read, per-channel and mono sums of squares, the peak."""

    frames: int = 0
    samples: int = 0
    peak: float = 0.0
    subtype: str = ""
    channel_squares: np.ndarray | None = None
    mono_squares: float = 0.0


def _check_block(path: Path, data: np.ndarray, tally: _Tally, source_rate: int) -> None:
    """NaN/Inf and samples beyond MAX_SAMPLE in one block, named at their place in the file."""
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        raise _non_finite(path, tally.frames + int(np.argmax(bad)), source_rate, tally.subtype)
    loudest = np.abs(data).max(axis=1, initial=0.0)
    if len(loudest) and loudest.max() > MAX_SAMPLE:
        at = tally.frames + int(np.argmax(loudest > MAX_SAMPLE))
        raise _beyond_audio(path, float(loudest.max()), at, source_rate)
    tally.peak = max(tally.peak, float(loudest.max(initial=0.0)))


def scan_audio(path: str | Path, rate: int, *, max_channels: int = 2) -> ScannedAudio:
    """:func:`~.io.load_audio`'s checks and notes in one streaming pass that keeps no samples
    (memory: a few blocks, whatever the file's length); the same one-line errors."""
    path = Path(path)
    with open_sound_file(path) as handle:
        source_rate, channels, subtype = handle.samplerate, handle.channels, handle.subtype
    if channels > max_channels:
        raise _too_many_channels(path, channels, max_channels)
    tally = _Tally(subtype=subtype, channel_squares=np.zeros(channels))
    for data, mono in _blocks(path, rate):
        _check_block(path, data, tally, source_rate)
        tally.frames += len(data)
        tally.samples += len(mono)
        tally.channel_squares += (data.astype(np.float64) ** 2).sum(axis=0)
        tally.mono_squares += float(np.dot(mono.astype(np.float64), mono.astype(np.float64)))
    if tally.frames == 0:
        raise UserError(f"{path} holds no samples")
    notes = []
    if subtype not in ("PCM_16", "FLOAT", "DOUBLE"):
        notes.append(f"read {subtype} samples as float32")
    if tally.peak > 1.0:
        notes.append(f"samples peak at {tally.peak:.3g}, beyond +-1.0 (a float file): kept as they are")
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    if source_rate != rate:
        notes.append(f"resampled {source_rate} Hz -> {rate} Hz")
    if np.sqrt(tally.mono_squares / max(tally.samples, 1)) < SILENCE_RMS:
        if channels > 1 and (cancelling := _cancelling(path, np.sqrt(tally.channel_squares / tally.frames))):
            raise cancelling
        raise UserError(f"{path} is silent (RMS below {SILENCE_RMS:g}); nothing to separate")
    return ScannedAudio(path, tally.samples, rate, source_rate, channels, tuple(notes))
