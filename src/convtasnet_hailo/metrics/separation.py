"""SI-SNR, permutation-invariant scoring and SI-SNRi, as Asteroid defines them; results flagged,
not averaged: a silent reference is named and left out of every mean, and so is any metric that
is not a finite number (:func:`finite_mean`)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

EPS = 1e-8
#: A reference whose zero-mean power (mean square, full scale 1.0) is below this is silent:
#: -80 dBFS, far below speech (LibriMix sources sit near -25 dBFS). SI-SNR against it is not a
#: measurement (EPS clamps it near -80 dB) and P.862 finds no utterance in it. The one threshold
#: every metric uses.
SILENT_REFERENCE_POWER = 1e-8


def is_silent(reference: np.ndarray) -> bool:
    """Whether (T,) ``reference`` is silent: zero-mean power below :data:`SILENT_REFERENCE_POWER`
    (a constant offset is silence too: SI-SNR removes the mean)."""
    x = np.asarray(reference, np.float64)
    if x.size == 0:
        return True
    x = x - x.mean()
    return float(np.mean(x * x)) < SILENT_REFERENCE_POWER


def finite_mean(values) -> float:
    """The mean of the finite values; NaN when there are none (never a mean over NaN or Inf)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else math.nan


def si_snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Zero-mean scale-invariant SNR in dB of (T,) ``estimate`` against (T,) ``reference``."""
    estimate = np.asarray(estimate, np.float64) - np.mean(estimate)
    reference = np.asarray(reference, np.float64) - np.mean(reference)
    projection = np.dot(estimate, reference) * reference / (np.dot(reference, reference) + EPS)
    noise = estimate - projection
    return float(10 * np.log10(np.dot(projection, projection) / (np.dot(noise, noise) + EPS) + EPS))


@dataclasses.dataclass(frozen=True)
class SeparationScore:
    """Scores of estimates against references under the best permutation.

    ``permutation[i]`` is the estimate matched with reference i. A silent reference
    (``silent[i]``) has NaN scores, and the means leave it out, as they leave out any
    non-finite score; ``excluded_silent_references`` and ``excluded_non_finite`` count them.
    """

    permutation: tuple[int, ...]
    si_snr: tuple[float, ...]  # per reference, dB (NaN for a silent one)
    mixture_si_snr: tuple[float, ...]  # the mixture itself against each reference, dB
    silent: tuple[bool, ...] = ()  # per reference

    @property
    def si_snri(self) -> tuple[float, ...]:
        return tuple(s - m for s, m in zip(self.si_snr, self.mixture_si_snr, strict=False))

    @property
    def mean_si_snr(self) -> float:
        return finite_mean(self.si_snr)

    @property
    def mean_si_snri(self) -> float:
        return finite_mean(self.si_snri)

    @property
    def silent_references(self) -> tuple[str, ...]:
        """The silent references by name: "s1", "s2", ..."""
        return tuple(f"s{i}" for i, quiet in enumerate(self.silent, 1) if quiet)

    @property
    def excluded_silent_references(self) -> int:
        return sum(self.silent)

    @property
    def excluded_non_finite(self) -> int:
        """Scores of sounding references left out of the means for not being finite."""
        flags = self.silent or (False,) * len(self.si_snri)
        return sum(not quiet and not math.isfinite(v) for v, quiet in zip(self.si_snri, flags, strict=False))


def score_separation(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray) -> SeparationScore:
    """Best-permutation SI-SNR of (n_src, T) estimates against (n_src, T) references. The
    permutation is chosen on the sounding references (a silent one matches any estimate)."""
    n = len(references)
    if len(estimates) != n:
        raise ValueError(f"{len(estimates)} estimates for {n} references")
    silent = tuple(is_silent(r) for r in references)
    pair = np.array([[si_snr(estimates[e], references[r]) for e in range(n)] for r in range(n)])
    judged = [r for r in range(n) if not silent[r]] or list(range(n))

    def total(p: tuple[int, ...]) -> float:
        values = [pair[r, p[r]] for r in judged]
        return sum(values) if all(math.isfinite(v) for v in values) else -math.inf

    best = max(itertools.permutations(range(n)), key=total)
    return SeparationScore(
        tuple(best),
        tuple(math.nan if silent[r] else float(pair[r, best[r]]) for r in range(n)),
        tuple(math.nan if silent[r] else si_snr(mixture, references[r]) for r in range(n)),
        silent,
    )
