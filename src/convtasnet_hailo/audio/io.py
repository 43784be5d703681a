"""Reading and writing audio: mono float32 at the model's rate, with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import written_atomically
from ..guard import regular_file
from ..resources import refuse_unless_fits
from .arrays import MAX_RATE, MAX_SAMPLE, MIN_RATE

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


def _first_non_finite(data: np.ndarray) -> int | None:
    """Index of the first frame holding NaN or Inf, or None. Shape (frames, channels)."""
    bad = ~np.isfinite(data).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _beyond_audio(path: Path, value: float, at: int, rate: int) -> UserError:
    return UserError(
        f"{path} holds {value:.3g} at {at / rate:.3f} s (sample {at}), beyond +-{MAX_SAMPLE:g}: not audio "
        "samples (full scale is 1.0); rescale the file"
    )


def _non_finite(path: Path, at: int, rate: int, subtype: str) -> UserError:
    """NaN/Inf at frame ``at`` (read as float32); a DOUBLE file's 3e300 is said as itself (float32
    makes it Inf), so the file is not called corrupt for holding a huge finite number."""
    if subtype == "DOUBLE":
        import soundfile as sf

        with sf.SoundFile(str(path)) as handle:
            handle.seek(at)
            frame = handle.read(1, dtype="float64", always_2d=True)[0]
        if np.isfinite(frame).all():
            return _beyond_audio(path, float(frame[np.argmax(np.abs(frame))]), at, rate)
    return UserError(
        f"{path} holds NaN/Inf samples, the first at {at / rate:.3f} s (sample {at}); repair or re-export the file"
    )


def _too_many_channels(path: Path, channels: int, max_channels: int) -> UserError:
    if max_channels == 1:
        return UserError(
            f"{path} has {channels} channels where one is read (a reference source); pass a mono file "
            "(one channel of it: sox IN OUT remix 1)"
        )
    return UserError(f"{path} has {channels} channels; pass a mono or stereo file (at most {max_channels} channels)")


def _check_rate(path: Path, rate: int) -> None:
    """A header's sample rate is a rate audio is recorded at (1 Hz would resample into millions of
    samples per input sample; 1e9 Hz into almost none)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UserError(
            f"{path} says its samples are at {rate} Hz, not an audio rate (a damaged or hand-made header?); "
            f"pass a file at {MIN_RATE} to {MAX_RATE} Hz"
        )


def _cancelling(path: Path, channel_rms: np.ndarray) -> UserError | None:
    """The error for a stereo file whose channels cancel when averaged (one is the other
    inverted), or None: such a file is not silent, and averaging is what made it so.
    ``channel_rms``: (C,) each channel's RMS."""
    loudest = float(np.max(channel_rms))
    if loudest < SILENCE_RMS:
        return None
    return UserError(
        f"{path}: its {len(channel_rms)} channels cancel when averaged to mono (one is the other phase-inverted; "
        f"RMS {loudest:.3g} per channel, below {SILENCE_RMS:g} mixed); pass one channel (sox IN OUT remix 1) "
        "or invert one (sox IN OUT remix 1 2i)"
    )


def open_sound_file(path: Path):
    """``path`` opened with soundfile (the caller closes it), its rate checked; a folder, a missing,
    unreadable or non-audio file, or one that is not a regular file, is one line."""
    import soundfile as sf

    if path.is_dir():
        raise UserError(f"{path} is a folder; pass an audio file (WAV/FLAC)")
    if not path.exists():
        raise UserError(f"audio file {path} does not exist")
    regular_file(path, "audio file", "pass a WAV/FLAC file")  # a FIFO or a device would never end
    try:
        handle = sf.SoundFile(str(path))
    except PermissionError:
        raise UserError(f"cannot read {path}: permission denied; make it readable (chmod +r)") from None
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise UserError(f"cannot read {path} as audio ({str(exc).splitlines()[0]}); pass a WAV/FLAC file") from None
    try:
        _check_rate(path, handle.samplerate)
    except UserError:
        handle.close()
        raise
    return handle


def _read(path: Path):
    import soundfile as sf

    with open_sound_file(path) as handle:  # one open: samples, rate and subtype
        refuse_unless_fits(
            4 * handle.frames * handle.channels,
            f"reading {path} ({handle.frames} frames)",
            "cut the file into shorter ones",
        )
        try:
            data, source_rate, subtype = handle.read(dtype="float32", always_2d=True), handle.samplerate, handle.subtype
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
            raise UserError(f"cannot read {path} as audio ({str(exc).splitlines()[0]}); pass a WAV/FLAC file") from None
    return data, source_rate, subtype


def load_audio(path: str | Path, rate: int, *, max_channels: int = 2, allow_silent: bool = False) -> LoadedAudio:
    """Reads ``path`` as mono float32 at ``rate``: stereo is averaged (noted), other rates are
    resampled (noted), 8/24/32-bit PCM is read as float (noted), float files beyond +-1.0 are kept
    as they are (noted). Missing, unreadable, empty, silent, many-channel files and files with
    NaN or Inf samples, or samples beyond +-MAX_SAMPLE (not audio), raise UserError."""
    path = Path(path)
    data, source_rate, subtype = _read(path)
    frames, channels = data.shape
    if frames == 0:
        raise UserError(f"{path} holds no samples")
    if channels > max_channels:
        raise _too_many_channels(path, channels, max_channels)
    bad = _first_non_finite(data)
    if bad is not None:
        raise _non_finite(path, bad, source_rate, subtype)
    peak = float(np.abs(data).max())
    if peak > MAX_SAMPLE:
        at = int(np.argmax(np.abs(data).max(axis=1) > MAX_SAMPLE))
        raise _beyond_audio(path, peak, at, source_rate)
    notes = []
    if subtype not in ("PCM_16", "FLOAT", "DOUBLE"):
        notes.append(f"read {subtype} samples as float32")
    if peak > 1.0:
        notes.append(f"samples peak at {peak:.3g}, beyond +-1.0 (a float file): kept as they are")
    wav = data[:, 0] if channels == 1 else data.mean(axis=1)
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    if source_rate != rate:
        wav = resample(wav, source_rate, rate)
        notes.append(f"resampled {source_rate} Hz -> {rate} Hz")
    if not allow_silent and float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        channel_rms = np.sqrt(np.mean(data.astype(np.float64) ** 2, axis=0))
        if channels > 1 and (cancelling := _cancelling(path, channel_rms)) is not None:
            raise cancelling
        raise UserError(f"{path} is silent (RMS below {SILENCE_RMS:g}); nothing to separate")
    return LoadedAudio(np.ascontiguousarray(wav, dtype=np.float32), rate, source_rate, channels, tuple(notes))


def probe_audio(path: str | Path, rate: int, *, max_channels: int = 2, min_seconds: float = 0.0) -> None:
    """The checks :func:`load_audio` makes that a file's header answers (regular file, readable as
    audio, samples, channels, long enough), without reading its samples: a whole listed set is
    probed before the first of it is processed."""
    import soundfile as sf

    path = Path(path)
    regular_file(path, "audio file", "pass a WAV/FLAC file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise UserError(f"cannot read {path} as audio ({str(exc).splitlines()[0]}); pass a WAV/FLAC file") from None
    if info.frames == 0:
        raise UserError(f"{path} holds no samples")
    _check_rate(path, info.samplerate)
    if info.channels > max_channels:
        raise _too_many_channels(path, info.channels, max_channels)
    if info.frames / info.samplerate < min_seconds:
        raise UserError(
            f"{path} holds {info.frames} sample(s) at {info.samplerate} Hz, fewer than one encoder window "
            f"({min_seconds * rate:g} samples at {rate} Hz); pass a longer recording"
        )


def pcm_safe_gain(estimates: np.ndarray, subtype: str, headroom: float = 0.99) -> float:
    """The gain that keeps ``estimates`` (any shape) from clipping in ``subtype``: 1.0 when they
    fit (and always for FLOAT), else ``headroom / peak`` (one gain for all, so that the sources
    keep their relative levels)."""
    peak = float(np.abs(estimates).max(initial=0.0))
    if subtype == "FLOAT" or peak <= 1.0:
        return 1.0
    return headroom / peak


def save_audio(path: Path, wav: np.ndarray, rate: int, subtype: str = "PCM_16") -> None:
    """Writes (T,) float audio atomically. A PCM subtype never clips silently: samples beyond
    +-1.0 are an error (scale them with :func:`pcm_safe_gain` first, or write FLOAT)."""
    import soundfile as sf

    if subtype not in SUBTYPES:
        raise UserError(f"unknown --subtype {subtype!r}; choose one of {', '.join(SUBTYPES)}")
    out = np.asarray(wav, dtype=np.float32)
    if not np.isfinite(out).all():  # PCM would hold -32768 for them, FLOAT the NaNs themselves
        raise UserError(f"{path}: the audio to write holds NaN/Inf values; nothing written")
    peak = float(np.abs(out).max(initial=0.0))
    if subtype != "FLOAT" and peak > 1.0:
        raise ValueError(f"{path}: samples peak at {peak:.3g} and {subtype} would clip them; scale or write FLOAT")
    with written_atomically(path) as temporary:
        try:
            sf.write(str(temporary), out, rate, subtype=subtype, format="WAV")
        except sf.LibsndfileError as exc:  # not an OSError: a full disk says "System error" here
            raise UserError(
                f"cannot write {path} ({str(exc).splitlines()[0]}); check the free space and permissions "
                "of its folder (files already finished are kept)"
            ) from None
