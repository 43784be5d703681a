"""Separated sources written as they are made, so that a long recording's outputs never sit in
memory whole (`separate`, `enhance`).

Two gains depend on the whole output: the level match of a one-output model (``audio.level``:
``<y, x> / <y, y>``) and the PCM gain that keeps the loudest sample from clipping. A first pass
writes the raw float32 sources to hidden temporary FLOAT WAVs in the output folder while it sums
``<y, x>``, ``<y, y>`` and keeps the peak; a second pass reads them back block by block, applies
both gains and writes the requested subtype under the temporary names that ``files`` renames
into place at the end. Where neither gain can apply (FLOAT, no level match) the first pass
writes the final temporaries directly. Summing dot products during the one pass that exists
anyway costs nothing; a statistics pass before it would run the model twice.

The numbers equal the in-memory path's: the same float32 products in the same order, and the
PCM gain from the peak, since ``|fl(e * g)|`` grows with ``|e|`` (rounding is monotonic) so the
peak of the scaled output is the scaled peak. The level gain differs only in the order its dot
products are summed (a few ulps).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..audio.io import pcm_safe_gain
from ..audio.level import LevelMatch, LevelSums, raw_output
from ..errors import UserError
from ..files import PARTIAL_SUFFIX, written_atomically
from .inputs import refuse_non_finite

#: Frames copied at a time in the second pass.
COPY_FRAMES = 1 << 16


@dataclasses.dataclass(frozen=True)
class WrittenSources:
    """What was applied to the written sources: ``gain`` (PCM headroom, 1.0 for none) and
    ``level`` (the level match, or the raw output kept); ``peak``: the raw sources' peak."""

    gain: float
    level: LevelMatch
    peak: float


def _failed_write(path: Path, exc: Exception) -> UserError:
    return UserError(
        f"cannot write {path} ({str(exc).splitlines()[0]}); check the free space and permissions "
        "of its folder (files already finished are kept)"
    )


def _raw_name(temporary: Path) -> Path:
    return temporary.with_name(temporary.name.removesuffix(PARTIAL_SUFFIX) + ".raw" + PARTIAL_SUFFIX)


def _first_pass(pairs, raws: list[Path], targets: list[Path], rate: int, what: str) -> tuple[LevelSums, float]:
    """Every (mixture (k,), estimates (n_src, k)) block appended to ``raws`` (FLOAT WAVs, one per
    source; errors name ``targets``); returns the first source's level sums against the mixture
    and the peak |sample|."""
    import soundfile as sf

    sums, peak = LevelSums(), np.float32(0.0)
    with contextlib.ExitStack() as stack:
        try:
            handles = [stack.enter_context(sf.SoundFile(str(r), "w", rate, 1, "FLOAT", format="WAV")) for r in raws]
        except (sf.LibsndfileError, OSError) as exc:
            raise _failed_write(targets[0], exc) from None
        for mixture, estimates in pairs:
            refuse_non_finite(estimates, what)
            sums.add(estimates[0], mixture)
            peak = max(peak, np.abs(estimates).max(initial=np.float32(0.0)))
            for handle, estimate, target in zip(handles, estimates, targets, strict=True):
                try:
                    handle.write(estimate)
                except sf.LibsndfileError as exc:  # not an OSError: a full disk says "System error" here
                    raise _failed_write(target, exc) from None
    return sums, float(peak)


def _second_pass(raw: Path, final: Path, target: Path, rate: int, scaling: tuple[str, float, float]) -> None:
    """``raw`` (FLOAT) read back block by block, times ``level`` then ``gain`` as the in-memory
    path multiplies (``scaling``: subtype, level, gain), written to ``final`` (the temporary of
    ``target``) in ``subtype``."""
    import soundfile as sf

    subtype, level, gain = scaling
    try:
        with sf.SoundFile(str(raw)) as source, sf.SoundFile(str(final), "w", rate, 1, subtype, format="WAV") as out:
            while len(block := source.read(COPY_FRAMES, dtype="float32")):
                out.write((block * level) * gain)
    except sf.LibsndfileError as exc:
        raise _failed_write(target, exc) from None


def write_sources(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    targets: list[Path],
    rate: int,
    subtype: str,
    match_level: bool,
    what: str,
) -> WrittenSources:
    """Each of ``targets`` (one per source) written from ``pairs`` (mixture (k,), estimates
    (n_src, k) float32, in order) and renamed into place only once all are complete: an error or
    Ctrl-C leaves no temporary and no partial file. ``match_level``: scale to the input's level
    and polarity (one-output models). Memory: a block of ``pairs`` and one copy block."""
    direct = subtype == "FLOAT" and not match_level
    with contextlib.ExitStack() as stack:
        finals = [stack.enter_context(written_atomically(target)) for target in targets]
        raws = finals if direct else [_raw_name(final) for final in finals]
        if not direct:
            stack.callback(lambda: [raw.unlink(missing_ok=True) for raw in raws])
        sums, peak = _first_pass(pairs, raws, targets, rate, what)
        level = sums.match() if match_level else raw_output()
        gain = pcm_safe_gain(np.array([peak], np.float32) * level.gain, subtype)
        if not direct:
            for raw, final, target in zip(raws, finals, targets, strict=True):
                _second_pass(raw, final, target, rate, (subtype, level.gain, gain))
    return WrittenSources(gain, level, peak)
