"""PESQ and STOI wrappers: the same signal scores at the top, noise lowers both, silence is NaN."""

import math

import numpy as np

from convtasnet_hailo.metrics.quality import pesq_score, quality_scores, stoi_score
from tests.conftest import speech_like


def test_scores_fall_with_noise_at_both_pesq_rates_and_others():
    rng = np.random.default_rng(0)
    for rate in (8000, 16000, 22050):
        clean = speech_like(3.0, rate, 1)
        noisy = clean + 0.5 * np.std(clean) * rng.standard_normal(clean.size)
        assert pesq_score(clean, clean, rate) > 4.0 > pesq_score(noisy, clean, rate)
        assert stoi_score(clean, clean, rate) > 0.99 > stoi_score(noisy, clean, rate)


def test_silent_reference_gives_nan_pesq_and_quality_keys():
    assert math.isnan(pesq_score(np.zeros(16000), np.zeros(16000), 16000))
    clean = speech_like(2.0, 8000, 2)[None]
    scores = quality_scores(clean, clean, clean[0] * 0.5 + 0.01, 8000)
    assert set(scores) == {
        f"{k}_{w}" for k in ("pesq", "stoi") for w in ("hailo_src1", "mixture_s1", "hailo_mean", "mixture_mean")
    }
