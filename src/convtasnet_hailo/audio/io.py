"""Reading and writing audio: mono float32 at the model's rate, with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UserError

SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
#: Below this RMS (about -100 dBFS) a file counts as silent: nothing to separate.
SILENCE_RMS = 1e-5


@dataclasses.dataclass(frozen=True)
class LoadedAudio:
    """A mono waveform (T,) float32 at ``rate``; ``notes`` say what was done to the file."""

    wav: np.ndarray
    rate: int
    source_rate: int
    source_channels: int
    notes: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.rate


def resample(wav: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality resampling with soxr (VHQ). Shape (T,) -> (T * target / source,)."""
    if source_rate == target_rate:
        return wav
    import soxr

    return soxr.resample(wav, source_rate, target_rate, quality="VHQ").astype(np.float32)


def load_audio(path: str | Path, rate: int, *, max_channels: int = 2, allow_silent: bool = False) -> LoadedAudio:
    """Reads ``path`` as mono float32 at ``rate``: stereo is averaged (noted), other rates are
    resampled (noted). Missing, unreadable, empty, silent or many-channel files raise UserError."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file {path} does not exist")
    try:
        data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot read {path} as audio ({str(exc).splitlines()[0]}); pass a WAV/FLAC file") from None
    frames, channels = data.shape
    if frames == 0:
        raise UserError(f"{path} holds no samples")
    if channels > max_channels:
        raise UserError(f"{path} has {channels} channels; pass a mono or stereo file (at most {max_channels})")
    notes = []
    wav = data[:, 0] if channels == 1 else data.mean(axis=1)
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    if source_rate != rate:
        wav = resample(wav, source_rate, rate)
        notes.append(f"resampled {source_rate} Hz -> {rate} Hz")
    if not allow_silent and float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise UserError(f"{path} is silent (RMS below {SILENCE_RMS:g}); nothing to separate")
    return LoadedAudio(np.ascontiguousarray(wav, dtype=np.float32), rate, source_rate, channels, tuple(notes))


def save_audio(path: Path, wav: np.ndarray, rate: int, subtype: str = "PCM_16") -> None:
    """Writes (T,) float audio; PCM subtypes clip to [-1, 1] (FLOAT keeps exact values)."""
    import soundfile as sf

    if subtype not in SUBTYPES:
        raise UserError(f"unknown --subtype {subtype!r}; choose one of {', '.join(SUBTYPES)}")
    out = np.asarray(wav, dtype=np.float32)
    if subtype != "FLOAT":
        out = np.clip(out, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), out, rate, subtype=subtype)
