"""Arrays handed to the Python API, checked before a model sees them: it refuses rather than
guesses. Mono samples, or two dimensions with the channel axis stated (never flattened: an
interleaved (T, 2) would become noise at twice the length); PCM integers scaled as soundfile
reads them; finite samples within :data:`MAX_SAMPLE`; a sample rate that is a whole number of
Hz in range. Every refusal is one :class:`~convtasnet_hailo.errors.UserError` line naming the
parameter (``wav``, ``samples``, ``rate`` ...), never a CLI option.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UserError

#: Channels a 2-D array may hold (averaged to mono, as `separate` averages a stereo file).
MAX_CHANNELS = 2
#: Float samples beyond this are not audio (full scale is 1.0; PCM values passed as floats stop
#: at 32768): a model fed them overflows, and the error would wrongly blame the model.
MAX_SAMPLE = 2.0**15
#: Sample rates a caller may state (below, a second of audio would resample to minutes).
MIN_RATE, MAX_RATE = 1000, 768_000
#: Signed PCM integers and the divisor soundfile uses when it reads them as float.
PCM_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
_DTYPES = "float samples in [-1, 1] or int8/int16/int32 PCM (scaled as soundfile reads it: int16 / 32768)"


def as_array(value, parameter: str) -> np.ndarray:
    """``value`` as a numpy array (a list is fine); a ragged or non-numeric one is refused."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0].split(". ")[0]  # numpy goes on about the shape it saw
        raise UserError(f"{parameter} is not an array of samples ({reason}); pass a numpy array") from None


def channel_axis_value(channel_axis) -> int | None:
    """``channel_axis`` as 0 (channels first, (C, T)) or 1 (channels last, (T, C)), or None."""
    if channel_axis is None:
        return None
    integer = isinstance(channel_axis, int | np.integer) and not isinstance(channel_axis, bool)
    if not integer or channel_axis not in (0, 1, -1, -2):
        raise UserError(f"channel_axis={channel_axis!r}: pass 1 for (T, C) as soundfile.read returns it, 0 for (C, T)")
    return int(channel_axis) % 2


def _frames(array: np.ndarray, parameter: str, channel_axis: int | None, channels: bool) -> np.ndarray:
    """``array`` as (T, C): a 1-D array is one channel; a 2-D one needs its channel axis stated."""
    if array.ndim == 1:
        return array[:, None]
    if not channels:
        raise UserError(
            f"{parameter} has shape {array.shape}: push one channel, shape (k * hop,) (average a stereo "
            "block first: block.mean(axis=1))"
        )
    if array.ndim != 2:
        raise UserError(
            f"{parameter} has shape {array.shape}: pass mono samples (T,), or (T, C) with channel_axis=1 "
            "(as soundfile.read returns it) or (C, T) with channel_axis=0"
        )
    if channel_axis is None:
        raise UserError(
            f"{parameter} has shape {array.shape}: say which axis holds the channels, channel_axis=1 for (T, C) "
            "as soundfile.read returns it or channel_axis=0 for (C, T) (they are averaged to mono; or pass "
            f"mono: {parameter}.mean(axis=1))"
        )
    frames = array if channel_axis == 1 else array.T
    if not 1 <= frames.shape[1] <= MAX_CHANNELS:
        raise UserError(
            f"{parameter} has shape {array.shape}: {frames.shape[1]} channels along channel_axis={channel_axis}; "
            f"pass mono or stereo (at most {MAX_CHANNELS} channels), or the other channel_axis"
        )
    return frames


def _as_float(frames: np.ndarray, parameter: str) -> np.ndarray:
    """Float samples: PCM integers divided as soundfile divides them; other dtypes refused."""
    if frames.dtype in PCM_SCALE:
        return frames.astype(np.float64) / PCM_SCALE[frames.dtype]
    if frames.dtype.kind != "f":
        raise UserError(f"{parameter} is {frames.dtype}: pass {_DTYPES}")
    return frames


def _check_values(frames: np.ndarray, parameter: str) -> None:
    """Finite and within :data:`MAX_SAMPLE`, checked in the caller's own dtype (a float64 3e300
    is a huge value, not the Inf float32 would make of it). Shape (T, C)."""
    bad = ~np.isfinite(frames).all(axis=1)
    if bad.any():
        at = int(np.argmax(bad))
        value = float(frames[at][~np.isfinite(frames[at])][0])
        name = "NaN" if np.isnan(value) else ("Inf" if value > 0 else "-Inf")
        raise UserError(f"{parameter} holds {name} at sample {at}: pass finite samples")
    with np.errstate(over="ignore"):
        loud = (np.abs(frames) > MAX_SAMPLE).any(axis=1)
    if loud.any():
        at = int(np.argmax(loud))
        value = frames[at][np.argmax(np.abs(frames[at]))]
        raise UserError(
            f"{parameter} holds {float(value):.3g} at sample {at}, beyond +-{MAX_SAMPLE:g}: pass audio samples "
            "(full scale is 1.0)"
        )


def mono_samples(wav, parameter: str = "wav", channel_axis=None, *, channels: bool = True) -> np.ndarray:
    """``wav`` as (T,) float32: mono (T,), or 2-D with ``channel_axis`` stated (1: (T, C), 0:
    (C, T); at most :data:`MAX_CHANNELS`, averaged). ``channels`` False (a stream's hop): mono
    only. Integers scaled as soundfile reads them; NaN, Inf and samples beyond :data:`MAX_SAMPLE`
    refused, naming the first."""
    axis = channel_axis_value(channel_axis)
    array = as_array(wav, parameter)
    if array.ndim == 0:
        raise UserError(f"{parameter} is a single value, not samples: pass an array of shape (T,)")
    frames = _as_float(_frames(array, parameter, axis, channels), parameter)
    _check_values(frames, parameter)
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
    return frames.astype(np.float64).mean(axis=1).astype(np.float32)


def rate_value(rate, parameter: str = "rate") -> int:
    """``rate`` in Hz as an int: a whole number in [:data:`MIN_RATE`, :data:`MAX_RATE`]."""
    number = rate if isinstance(rate, int | float | np.integer | np.floating) and not isinstance(rate, bool) else None
    if number is None or not np.isfinite(number) or float(number) != int(number):
        raise UserError(f"{parameter}={rate!r}: pass the samples' rate in Hz, a whole number such as 16000")
    if not MIN_RATE <= int(number) <= MAX_RATE:
        raise UserError(f"{parameter}={rate!r} Hz: pass a rate from {MIN_RATE} to {MAX_RATE} Hz")
    return int(number)


def sources_matrix(sources, n_src: int, parameter: str = "sources") -> np.ndarray:
    """``sources`` as (n_src, T) float32, as ``separate`` returns them: a transposed (T, n_src)
    or a single track is refused (written, it would be one file per sample), as is NaN or Inf."""
    array = as_array(sources, parameter)
    if array.ndim != 2 or array.shape[0] != n_src or array.shape[1] == 0:
        raise UserError(f"{parameter} has shape {array.shape}: pass ({n_src}, T), sources as separate() returns them")
    if array.dtype.kind not in "fi":
        raise UserError(f"{parameter} is {array.dtype}: pass float sources")
    bad = ~np.isfinite(array).all(axis=0)
    if bad.any():
        raise UserError(f"{parameter} holds NaN or Inf at sample {int(np.argmax(bad))}: pass finite values")
    return array.astype(np.float32)


def file_stem(stem, parameter: str = "stem") -> str:
    """A file name stem: text, no folder separator, no ``..``, no control characters, short
    enough for ``<stem>_s<i>.wav`` to be a file name."""
    if not isinstance(stem, str):
        raise UserError(f"{parameter}={stem!r}: pass a file name stem (text)")
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if not stem or ".." in stem or stem == "." or any(s in stem for s in separators):
        raise UserError(f"{parameter}={stem!r}: pass a file name stem without folders or '..' (out_dir says where)")
    if any(ord(c) < 32 or ord(c) == 127 for c in stem):
        raise UserError(f"{parameter}={stem!r} holds a control character: pass a plain file name stem")
    if len(stem.encode()) > 200:
        raise UserError(f"{parameter} is {len(stem.encode())} bytes long: pass a stem of at most 200")
    return stem
