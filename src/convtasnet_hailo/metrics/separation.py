"""SI-SNR, permutation-invariant scoring and SI-SNRi, as Asteroid defines them."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

EPS = 1e-8


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

    ``permutation[i]`` is the estimate matched with reference i.
    """

    permutation: tuple[int, ...]
    si_snr: tuple[float, ...]  # per reference, dB
    mixture_si_snr: tuple[float, ...]  # the mixture itself against each reference, dB

    @property
    def si_snri(self) -> tuple[float, ...]:
        return tuple(s - m for s, m in zip(self.si_snr, self.mixture_si_snr, strict=False))

    @property
    def mean_si_snr(self) -> float:
        return float(np.mean(self.si_snr))

    @property
    def mean_si_snri(self) -> float:
        return float(np.mean(self.si_snri))


def score_separation(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray) -> SeparationScore:
    """Best-permutation SI-SNR of (n_src, T) estimates against (n_src, T) references."""
    n = len(references)
    if len(estimates) != n:
        raise ValueError(f"{len(estimates)} estimates for {n} references")
    pair = np.array([[si_snr(estimates[e], references[r]) for e in range(n)] for r in range(n)])
    best = max(itertools.permutations(range(n)), key=lambda p: sum(pair[r, p[r]] for r in range(n)))
    return SeparationScore(
        tuple(best),
        tuple(float(pair[r, best[r]]) for r in range(n)),
        tuple(si_snr(mixture, references[r]) for r in range(n)),
    )
