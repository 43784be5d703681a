"""Runbook step 6: the reference model and the stitched path on one mixture, with parity and
separation quality (SI-SNR against ground truth, best permutation)."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ..audio.io import LoadedAudio, load_audio, save_audio
from ..audio.level import match_input
from ..errors import UserError
from ..metrics.quality import quality_scores
from ..metrics.separation import SeparationScore, score_separation
from ..resources import refuse_unless_fits
from ..runs.plot import plot_separation, plot_spectrograms
from ..runtime.separator import StitchedSeparator, reference_separation
from ..tolerances import TOL, contract_bound
from .inputs import load_inputs, refuse_non_finite


@dataclasses.dataclass
class ForwardResult:
    """Shapes: ``stitched``/``reference`` (n_src, T); ``sources`` (n_src, T) or None."""

    mixture: np.ndarray
    stitched: np.ndarray
    reference: np.ndarray
    sources: np.ndarray | None
    stitched_seconds: float
    reference_seconds: float

    @property
    def parity_max_abs(self) -> float:
        return float(np.abs(self.stitched - self.reference).max())

    @property
    def parity_max_rel(self) -> float:
        return self.parity_max_abs / max(float(np.abs(self.reference).max()), 1e-30)

    @property
    def parity_bound(self) -> float:
        """The contract's bound for the separated output: tol * max(1, peak of the reference)."""
        return contract_bound(float(np.abs(self.reference).max()))

    @property
    def parity_ok(self) -> bool:
        return self.parity_max_abs <= self.parity_bound

    def score(self, which: str = "stitched") -> SeparationScore | None:
        if self.sources is None:
            return None
        return score_separation(getattr(self, which), self.sources, self.mixture)


def run_forward(model, separator: StitchedSeparator, mixture: np.ndarray, sources: np.ndarray | None) -> ForwardResult:
    started = time.perf_counter()
    reference = reference_separation(model, mixture)
    reference_seconds = time.perf_counter() - started
    started = time.perf_counter()
    stitched = separator(mixture)
    return ForwardResult(mixture, stitched, reference, sources, time.perf_counter() - started, reference_seconds)


def forward_metrics(result: ForwardResult, rate: int) -> dict:
    """The runbook's ``librimix_hailo_forward_metrics.json`` keys, plus SI-SNRi, the mixture's
    own SI-SNR, the reference model's scores, and PESQ / STOI of the stitched estimates and of
    the mixture (``metrics.quality``)."""
    metrics: dict = {
        "parity_max_abs_vs_reference": result.parity_max_abs,
        "parity_max_rel_vs_reference": result.parity_max_rel,
        "parity_bound": result.parity_bound,
        "parity_ok": result.parity_ok,
        "tol": TOL,
        "num_samples": int(len(result.mixture)),
        "stitched_seconds": round(result.stitched_seconds, 4),
        "reference_seconds": round(result.reference_seconds, 4),
    }
    stitched, reference = result.score("stitched"), result.score("reference")
    if stitched is None:
        return metrics
    for i, (value, improvement, mixture) in enumerate(
        zip(stitched.si_snr, stitched.si_snri, stitched.mixture_si_snr, strict=False), 1
    ):
        metrics[f"si_snr_hailo_src{i}_vs_gt_s{i}_db"] = value
        metrics[f"si_snri_hailo_src{i}_db"] = improvement
        metrics[f"si_snr_mixture_vs_gt_s{i}_db"] = mixture
    metrics.update(
        {
            "si_snr_hailo_pair_sum_db": float(sum(v for v in stitched.si_snr if math.isfinite(v))),
            "si_snri_hailo_mean_db": stitched.mean_si_snri,
            "si_snr_reference_mean_db": reference.mean_si_snr,
            "si_snri_reference_mean_db": reference.mean_si_snri,
            "permutation": list(stitched.permutation),
            "silent_references": list(stitched.silent_references),
            **quality_scores(result.stitched[list(stitched.permutation)], result.sources, result.mixture, rate),
        }
    )
    return metrics


def load_sources(paths, rate: int, length: int) -> np.ndarray:
    """Ground-truth sources (n_src, length) at ``rate``; a length mismatch over 10 ms is an error."""
    sources = [load_audio(p, rate, max_channels=1, allow_silent=True).wav for p in paths]
    for path, wav in zip(paths, sources, strict=False):
        if abs(len(wav) - length) > rate // 100:
            raise UserError(
                f"source {path} has {len(wav)} samples, the mixture {length}: pass the mixture's own sources"
            )
    return np.stack([np.pad(w, (0, max(0, length - len(w))))[:length] for w in sources])


@dataclasses.dataclass(frozen=True)
class ForwardInputs:
    """A mixture and its ground-truth sources (n_src, T) or None, read and checked."""

    mixture: LoadedAudio
    sources: np.ndarray | None


def load_forward_inputs(config, mix_path: Path, source_paths) -> ForwardInputs:
    """The mixture and its sources, every one checked before any work."""
    (mixture,) = load_inputs([mix_path], config)
    refuse_unless_fits(
        2 * config.forward_bytes(len(mixture.wav)),
        f"{mix_path} ({mixture.seconds:.0f} s) through the reference model and the stitched path",
        "pass a shorter mixture",
    )
    sources = load_sources(source_paths, config.sample_rate, len(mixture.wav)) if source_paths else None
    if sources is not None and len(sources) != config.n_src:
        raise UserError(f"{len(sources)} ground-truth sources for a {config.n_src}-source model")
    return ForwardInputs(mixture, sources)


def forward_one(
    separator: StitchedSeparator, mix_path: Path, source_paths, inputs: ForwardInputs | None = None
) -> tuple[LoadedAudio, ForwardResult]:
    model = separator.model
    inputs = inputs or load_forward_inputs(model.config, mix_path, source_paths)
    result = run_forward(model, separator, inputs.mixture.wav, inputs.sources)
    refuse_non_finite(result.stitched, str(mix_path))
    return inputs.mixture, result


def write_forward_outputs(run_dir: Path, result: ForwardResult, rate: int, title: str) -> dict:
    """The separated sources (in ground-truth order when known) and the mixture as float WAVs,
    ``separation.png`` (waveforms) and ``spectrograms.png``. A one-output model's WAV is written at
    the input's speech level and polarity (``audio.level``, as `enhance` does); returns what the
    metrics record adds for that (``level``), else nothing (the metrics are the raw output's:
    scale-invariant)."""
    score = result.score()
    order = list(score.permutation) if score else list(range(len(result.stitched)))
    tracks, extra = result.stitched, {}
    if len(tracks) == 1:
        level = match_input(tracks[0], result.mixture)
        tracks, extra = tracks * level.gain, {"level": level.to_json()}
    for i, index in enumerate(order, 1):
        save_audio(run_dir / f"hailo_src{i}.wav", tracks[index], rate, "FLOAT")
    save_audio(run_dir / "mixture.wav", result.mixture, rate, "FLOAT")
    plot_separation(run_dir / "separation.png", rate, result.mixture, tracks[order], result.sources, title)
    rows = [("input", result.mixture)] + [(f"output {i}", tracks[k]) for i, k in enumerate(order, 1)]
    rows += [(f"reference {i}", s) for i, s in enumerate(result.sources, 1)] if result.sources is not None else []
    plot_spectrograms(run_dir / "spectrograms.png", rate, rows, title)
    return extra
