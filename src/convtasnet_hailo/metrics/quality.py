"""Perceptual quality of an estimate against its clean reference: PESQ (ITU-T P.862, the
``pesq`` package) and STOI (the ``pystoi`` package). Both need 8 or 16 kHz (STOI resamples to
10 kHz itself); other rates are resampled to 16 kHz first."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .separation import finite_mean, is_silent

PESQ_RATES = {8000: "nb", 16000: "wb"}


def _at_pesq_rate(x: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    if rate in PESQ_RATES:
        return np.asarray(x, np.float64), rate
    import soxr

    return soxr.resample(np.asarray(x, np.float64), rate, 16000), 16000


def pesq_score(estimate: np.ndarray, reference: np.ndarray, rate: int) -> float:
    """PESQ MOS-LQO (wide band at 16 kHz, narrow band at 8 kHz) of (T,) ``estimate``; NaN when
    P.862 finds no speech in the reference."""
    from pesq import NoUtterancesError, pesq

    ref, at = _at_pesq_rate(reference, rate)
    est, _ = _at_pesq_rate(estimate, rate)
    try:
        with warnings.catch_warnings():  # silent input: pesq divides by a zero peak before refusing it
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(pesq(at, ref, est, PESQ_RATES[at]))
    except NoUtterancesError:
        return math.nan


def stoi_score(estimate: np.ndarray, reference: np.ndarray, rate: int) -> float:
    """STOI (0..1) of (T,) ``estimate`` against (T,) ``reference``."""
    from pystoi import stoi

    return float(stoi(np.asarray(reference, np.float64), np.asarray(estimate, np.float64), rate, extended=False))


def quality_scores(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray, rate: int) -> dict:
    """PESQ and STOI of (n_src, T) ``estimates`` (already in the references' order) and of the
    mixture itself, per source and as means: the keys ``forward`` and ``evaluate`` report. A
    silent reference (``metrics.separation.is_silent``) is not scored (NaN); the means are over
    the finite scores only (PESQ is NaN where P.862 finds no utterance)."""
    scores: dict = {}
    sounding = [not is_silent(r) for r in references]
    for kind, score in (("pesq", pesq_score), ("stoi", stoi_score)):
        hailo = [score(e, r, rate) if s else math.nan for e, r, s in zip(estimates, references, sounding, strict=True)]
        mixed = [score(mixture, r, rate) if s else math.nan for r, s in zip(references, sounding, strict=True)]
        for i, (h, m) in enumerate(zip(hailo, mixed, strict=True), 1):
            scores[f"{kind}_hailo_src{i}"], scores[f"{kind}_mixture_s{i}"] = h, m
        scores[f"{kind}_hailo_mean"], scores[f"{kind}_mixture_mean"] = finite_mean(hailo), finite_mean(mixed)
    return scores
