"""The three sets of recordings `noise` works on (:class:`NoiseInputs`): calibration (the
ranges), held-out (the choices) and evaluation (the figures), loaded from files, folders or
LibriMix metadata CSVs; calibration never holds a recording of the other two."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..model.source import ModelSource
from .datasets import DEFAULT_CALIB_FILES, AudioSet, Recording, load_set, recordings, split_calibration

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NoiseAudio:
    """Where the three sets come from: the evaluation audio (files, folders or LibriMix CSVs;
    ``sources`` for one file), the calibration and held-out sets (None: the shipped recordings;
    the evaluation audio), and at most how many recordings of each (a seeded draw)."""

    audio: tuple[str, ...]
    sources: tuple[str, ...] = ()
    calib: tuple[str, ...] | None = None
    heldout: tuple[str, ...] | None = None
    calib_files: int | None = DEFAULT_CALIB_FILES
    audio_files: int | None = None
    heldout_files: int | None = None


@dataclasses.dataclass
class NoiseInputs:
    """The three sets: ranges come from ``calibration``; clipping and the advice are chosen on
    ``heldout`` (audio the calibration never saw; by default the evaluation audio); the report's
    figures are measured on ``evaluation``."""

    evaluation: AudioSet
    calibration: AudioSet
    heldout: AudioSet | None = None

    @property
    def judged_on(self) -> AudioSet:
        return self.heldout if self.heldout is not None else self.evaluation


def _default_calibration(rate: int) -> list[str]:
    """The shipped recordings, the one at the model's rate first (the other is resampled)."""
    from ..assets import DEMO_MIXTURE, ENHANCE_NOISY

    return [str(p) for p in ((ENHANCE_NOISY, DEMO_MIXTURE) if rate == 16000 else (DEMO_MIXTURE, ENHANCE_NOISY))]


def load_noise_inputs(source: ModelSource, spec: NoiseAudio) -> NoiseInputs:
    """The three sets loaded, calibration less any recording of the other two (held out means unseen)."""
    rate, n_src = source.model.config.sample_rate, source.model.config.n_src
    if spec.sources and (len(spec.audio) != 1 or len(spec.sources) != n_src):
        raise UserError(f"--s1/--s2 are the sources of one --audio file: pass one file and {n_src} source(s)")
    if spec.sources:
        evaluation = load_set([Recording(Path(spec.audio[0]), tuple(Path(p) for p in spec.sources))], rate, "--audio")
    else:
        evaluation = load_set(recordings(list(spec.audio), n_src, spec.audio_files, what="--audio"), rate, "--audio")
    heldout = (
        None
        if spec.heldout is None
        else load_set(recordings(list(spec.heldout), n_src, spec.heldout_files, what="--heldout"), rate, "--heldout")
    )
    calib_specs = list(spec.calib) if spec.calib else _default_calibration(rate)
    calibration = load_set(recordings(calib_specs, n_src, None, what="--calib"), rate, "--calib")
    seen = evaluation.digests() | (heldout.digests() if heldout is not None else set())
    kept = calibration.without(seen)
    if len(kept.wavs) < len(calibration.wavs):
        log.warning(
            f"noise: {len(calibration.wavs) - len(kept.wavs)} calibration recording(s) are also evaluation or "
            "held-out audio: left out of the calibration"
        )
    if not kept.wavs:
        raise UserError(
            "every calibration recording is also evaluation audio; pass --calib with other recordings "
            "(a folder or a LibriMix metadata CSV)"
        )
    if spec.calib_files is not None and len(kept.wavs) > spec.calib_files:
        chosen = np.sort(np.random.default_rng(0).choice(len(kept.wavs), spec.calib_files, replace=False))
        kept = dataclasses.replace(
            kept,
            recordings=[kept.recordings[k] for k in chosen],
            wavs=[kept.wavs[k] for k in chosen],
            sources=None if kept.sources is None else [kept.sources[k] for k in chosen],
        )
    return NoiseInputs(evaluation, kept, heldout)


#: `build`'s split of its --calib audio: this share held out for judging, at most this many.
DEFAULT_HELD_OUT_SHARE = 0.2
DEFAULT_HELD_OUT_MAX = 16


@dataclasses.dataclass(frozen=True)
class CalibrationSplit:
    """How one --calib set is split into calibration and held-out judging audio (seeded, stated)."""

    specs: tuple[str, ...]
    held_out_share: float = DEFAULT_HELD_OUT_SHARE
    held_out_max: int = DEFAULT_HELD_OUT_MAX
    seed: int = 0
    calib_files: int | None = DEFAULT_CALIB_FILES


def split_noise_inputs(source: ModelSource, split: CalibrationSplit) -> tuple[NoiseInputs, dict]:
    """The noise study's sets from one --calib set (files, folders or LibriMix CSVs): a seeded
    share held out (at most ``held_out_max``) judges and is reported on; at most ``calib_files``
    of the rest (seeded) calibrate. Returns the sets and the split's record (the seed, the share,
    every file of each part). Audio below the model's rate is upsampled with a warning naming
    both rates (``datasets.load_mixtures``)."""
    rate, n_src = source.model.config.sample_rate, source.model.config.n_src
    found = recordings(list(split.specs), n_src, what="--calib")
    calib, held = split_calibration(found, split.held_out_share, split.seed)
    if len(held) > split.held_out_max:
        calib, held = calib + held[split.held_out_max :], held[: split.held_out_max]
    if split.calib_files is not None and len(calib) > split.calib_files:
        chosen = np.sort(np.random.default_rng(split.seed).choice(len(calib), split.calib_files, replace=False))
        calib = [calib[k] for k in chosen]
    held_out = load_set(held, rate, "--calib (held out)")
    inputs = NoiseInputs(evaluation=held_out, calibration=load_set(calib, rate, "--calib"))
    record = {
        "seed": split.seed,
        "held_out_share": split.held_out_share,
        "held_out_max": split.held_out_max,
        "recordings": len(found),
        "calibration": [str(r.path) for r in calib],
        "held_out": [str(r.path) for r in held],
    }
    log.info(
        f"--calib: {len(found)} recording(s): {len(calib)} calibrate, {len(held)} held out for judging "
        f"(share {split.held_out_share:g}, at most {split.held_out_max}, seed {split.seed})"
    )
    return inputs, record
