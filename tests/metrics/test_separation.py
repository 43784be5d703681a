import numpy as np
import pytest

from convtasnet_hailo.metrics.separation import score_separation, si_snr

REF = np.array([1.0, -1.0, 1.0, -1.0])
NOISE = np.array([1.0, 1.0, -1.0, -1.0])  # zero mean, orthogonal to REF


def test_si_snr_hand_computed():
    # projection = REF (energy 4), residual = NOISE (energy 4): 0 dB
    assert si_snr(REF + NOISE, REF) == pytest.approx(0.0, abs=1e-6)
    # projection 2*REF (16), residual 0.5*NOISE (1): 10*log10(16)
    assert si_snr(2 * REF + 0.5 * NOISE, REF) == pytest.approx(10 * np.log10(16), abs=1e-6)
    # scale invariant, and blind to a constant offset (zero mean)
    assert si_snr(5 * (REF + NOISE) + 3.0, REF) == pytest.approx(0.0, abs=1e-6)


def test_best_permutation_and_improvement():
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((2, 1000))
    mixture = sources.sum(axis=0)
    estimates = sources[::-1] + 0.1 * rng.standard_normal((2, 1000))
    score = score_separation(estimates, sources, mixture)
    assert score.permutation == (1, 0)
    assert all(s > 15 for s in score.si_snr)
    assert score.si_snri[0] == pytest.approx(score.si_snr[0] - si_snr(mixture, sources[0]))
