"""Sets of recordings for `noise` and `finetune`: files, folders of audio, or LibriMix metadata.

A spec is an audio file, a folder (every audio file under it, sorted), or a ``.csv`` LibriMix
metadata file (its mixtures, with their sources). A set has sources when every recording has
them (a CSV row, or the ``s1/ s2/`` folders beside a ``mix_*/`` file). ``limit`` draws that many
recordings (seeded, so the same set every run); the count used is stated by the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np

from ..errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

#: Calibration tiles per stage input, the one default of `noise`, `compile` and `build`: the DFC's
#: own ``calibset_size`` default (docs/hailo_facts.md, Model optimization), the ranges the device
#: gets at optimization levels 0-1 (the levels the emulation models; the DFC's 1024 recommendation
#: is for level 2's fine-tuning, which needs a GPU and is not emulated). 1024 tiles of the demo
#: model at tile_w 256 are 5 GB of .npy; 64 are 330 MB.
DEFAULT_CALIB_COUNT = 64
#: At most this many calibration recordings (a seeded draw), in `noise` and `build`.
DEFAULT_CALIB_FILES = 64

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Recording:
    path: Path
    sources: tuple[Path, ...] | None = None


@dataclasses.dataclass
class AudioSet:
    """Loaded recordings: ``wavs`` (T,) float32 each, ``sources`` (n_src, T) each or None."""

    recordings: list[Recording]
    wavs: list[np.ndarray]
    sources: list[np.ndarray] | None

    @property
    def seconds_total(self) -> float:
        return float(sum(len(w) for w in self.wavs))

    def digests(self) -> set[str]:
        return {_digest(w) for w in self.wavs}

    def describe(self, rate: int) -> dict:
        return {
            "recordings": len(self.wavs),
            "seconds": round(self.seconds_total / rate, 2),
            "with_sources": self.sources is not None,
            "files": [str(r.path) for r in self.recordings],
        }

    def without(self, digests: set[str]) -> AudioSet:
        """This set less the recordings whose samples are in ``digests`` (held-out audio stays out)."""
        keep = [k for k, w in enumerate(self.wavs) if _digest(w) not in digests]
        return AudioSet(
            [self.recordings[k] for k in keep],
            [self.wavs[k] for k in keep],
            None if self.sources is None else [self.sources[k] for k in keep],
        )


def _digest(wav: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(wav, np.float32).tobytes()).hexdigest()


def _expand(spec: str, n_src: int, what: str) -> list[Recording]:
    from ..audio.librimix import read_metadata, sources_beside

    path = Path(spec)
    if not path.exists():
        raise UserError(f"{what} {spec} does not exist; pass audio files, a folder of them or a LibriMix metadata CSV")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise UserError(f"{what} {spec} holds no {'/'.join(AUDIO_SUFFIXES)} files")
        return [Recording(p, sources_beside(p, n_src)) for p in files]
    if path.suffix.lower() == ".csv":
        entries = read_metadata(path)
        if any(len(e.source_paths) != n_src for e in entries):
            raise UserError(
                f"{what} {spec}: its rows have {len(entries[0].source_paths)} source(s), the model "
                f"{n_src}; pass metadata for a {n_src}-source model"
            )
        return [Recording(e.mixture_path, e.source_paths) for e in entries]
    return [Recording(path, sources_beside(path, n_src))]


def recordings(
    specs: list[str], n_src: int, limit: int | None = None, seed: int = 0, what: str = "--calib"
) -> list[Recording]:
    """Every recording the specs name (duplicates once), or ``limit`` of them drawn with ``seed``."""
    found = list({r.path.resolve(): r for spec in specs for r in _expand(spec, n_src, what)}.values())
    if limit is not None and len(found) > limit:
        chosen = np.sort(np.random.default_rng(seed).choice(len(found), size=limit, replace=False))
        found = [found[k] for k in chosen]
    return found


def load_mixtures(found: list[Recording], rate: int, what: str) -> list[np.ndarray]:
    """The recordings' mixtures, mono at ``rate``. Audio recorded below ``rate`` is upsampled and
    holds nothing above half its own rate, so ranges calibrated on it miss the model's upper band:
    said once per set, naming both rates."""
    from ..audio.io import load_audio

    loaded = [load_audio(r.path, rate) for r in found]
    low = sorted({a.source_rate for a in loaded if a.source_rate < rate})
    if low:
        count = sum(a.source_rate < rate for a in loaded)
        log.warning(
            f"{what}: {count} of {len(loaded)} recording(s) at {', '.join(f'{r} Hz' for r in low)}, below the "
            f"model's {rate} Hz: upsampled, they hold nothing above {low[0] // 2} Hz, so ranges and noise measured "
            f"on them miss the model's upper band; pass audio recorded at {rate} Hz or more"
        )
    high = sorted({a.source_rate for a in loaded if a.source_rate > rate})
    if high:  # routine (nothing of the model's band is lost): a debug line, never ahead of a one-line error
        log.debug(
            f"{what}: {sum(a.source_rate > rate for a in loaded)} of {len(loaded)} recording(s) at "
            f"{', '.join(f'{r} Hz' for r in high)}: resampled to the model's {rate} Hz"
        )
    return [a.wav for a in loaded]


def load_set(found: list[Recording], rate: int, what: str = "audio") -> AudioSet:
    """The recordings loaded mono at ``rate``; sources padded or cut to their mixture's length."""
    from ..audio.io import load_audio

    wavs = load_mixtures(found, rate, what)
    sources = None
    if found and all(r.sources for r in found):
        sources = [
            np.stack(
                [
                    np.pad(s, (0, max(0, len(w) - len(s))))[: len(w)]
                    for s in (load_audio(p, rate, allow_silent=True).wav for p in r.sources)
                ]
            )
            for r, w in zip(found, wavs, strict=False)
        ]
    return AudioSet(found, wavs, sources)


def split_calibration(
    found: list[Recording], held_out_share: float, seed: int = 0
) -> tuple[list[Recording], list[Recording]]:
    """(calibration, held-out) recordings: a seeded draw of ``round(held_out_share * n)`` of them
    (at least one of each where there are two or more) held out for judging the quantization;
    both lists keep the given order. One recording cannot be split: a UserError says so."""
    if not 0 < held_out_share < 1:
        raise ValueError(f"held_out_share {held_out_share}: a share, strictly between 0 and 1")
    if len(found) < 2:
        raise UserError(
            f"--calib: {len(found)} recording(s); calibration and held-out judging need at least 2 "
            "(pass a folder or a LibriMix metadata CSV)"
        )
    count = min(max(1, round(held_out_share * len(found))), len(found) - 1)
    held = set(np.random.default_rng(seed).choice(len(found), size=count, replace=False).tolist())
    return (
        [r for k, r in enumerate(found) if k not in held],
        [r for k, r in enumerate(found) if k in held],
    )
