"""Reading and checking the audio a command separates, before any work; and refusing to write
what the model cannot have meant (NaN or Inf)."""

from __future__ import annotations

import numpy as np

from ..audio.blocks import ScannedAudio, scan_audio
from ..audio.io import LoadedAudio, load_audio
from ..errors import UserError


def load_inputs(paths, config, **options) -> list[LoadedAudio]:
    """Every input read and checked (readable, finite, long enough for one encoder window) before
    any work, so that a bad file late in the list fails the run before its first output."""
    mixtures = []
    for path in paths:
        audio = load_audio(path, config.sample_rate, **options)
        if len(audio.wav) < config.kernel_size:
            raise UserError(
                f"{path} holds {len(audio.wav)} sample(s) at {config.sample_rate} Hz, fewer than one "
                f"encoder window ({config.kernel_size} samples); pass a longer recording"
            )
        mixtures.append(audio)
    return mixtures


def scan_inputs(paths, config) -> list[ScannedAudio]:
    """:func:`load_inputs`' checks, each file read block by block and none kept in memory (a
    long recording is then separated as it is read again: ``separation.separate``)."""
    scanned = []
    for path in paths:
        audio = scan_audio(path, config.sample_rate)
        if audio.frames < config.kernel_size:
            raise UserError(
                f"{path} holds {audio.frames} sample(s) at {config.sample_rate} Hz, fewer than one "
                f"encoder window ({config.kernel_size} samples); pass a longer recording"
            )
        scanned.append(audio)
    return scanned


def refuse_non_finite(estimates: np.ndarray, what: str) -> None:
    """A NaN or Inf in separated audio is never written: it would be PCM's -32768."""
    if not np.isfinite(estimates).all():
        raise UserError(
            f"{what}: the separated sources hold NaN/Inf values; nothing written for it (the model "
            "overflows on this input: check the checkpoint's weights)"
        )
