"""Results flagged, not averaged (issue 39): a silent reference is named and left out of the
means, and no metric that is not a finite number enters one."""

import math

import numpy as np
import pytest

from convtasnet_hailo.metrics.quality import quality_scores
from convtasnet_hailo.metrics.separation import (
    SILENT_REFERENCE_POWER,
    finite_mean,
    is_silent,
    score_separation,
    si_snr,
)
from tests.conftest import speech_like


def test_silence_is_zero_mean_power_below_the_one_threshold():
    quiet = np.sqrt(SILENT_REFERENCE_POWER) * np.sign(np.sin(np.arange(8000)))  # power at the threshold
    assert is_silent(np.zeros(100)) and is_silent(np.full(100, 0.3)), "a constant offset is silence"
    assert is_silent(0.99 * quiet) and not is_silent(1.01 * quiet)
    assert not is_silent(speech_like(0.5, 8000, 1)) and is_silent(np.zeros(0))


def test_finite_mean_never_averages_nan_or_inf():
    assert finite_mean([1.0, math.nan, 3.0, math.inf, -math.inf]) == 2.0
    assert math.isnan(finite_mean([math.nan, math.inf])) and math.isnan(finite_mean([]))


def test_a_silent_reference_is_named_and_left_out_of_the_means():
    rng = np.random.default_rng(1)
    speech = speech_like(1.0, 8000, 2).astype(np.float64)
    references = np.stack([speech, np.zeros_like(speech)])  # s2 silent
    mixture = references.sum(axis=0)
    estimates = np.stack([1e-3 * rng.standard_normal(len(speech)), speech + 0.05 * rng.standard_normal(len(speech))])
    score = score_separation(estimates, references, mixture)
    assert score.permutation == (1, 0), "chosen on the sounding reference, not on the silent one's -80 dB"
    assert score.silent == (False, True) and score.silent_references == ("s2",)
    assert score.excluded_silent_references == 1 and score.excluded_non_finite == 0
    assert math.isnan(score.si_snr[1]) and math.isnan(score.si_snri[1])
    assert score.mean_si_snr == pytest.approx(si_snr(estimates[1], speech))
    assert score.mean_si_snri == pytest.approx(si_snr(estimates[1], speech) - si_snr(mixture, speech))
    everything = score_separation(estimates, np.zeros_like(references), mixture)
    assert everything.excluded_silent_references == 2 and math.isnan(everything.mean_si_snri)


def test_a_non_finite_score_is_counted_and_left_out():
    speech = [speech_like(0.5, 8000, s).astype(np.float64) for s in (3, 4)]
    references = np.stack(speech)
    estimates = references.copy()
    estimates[1, 10] = np.nan
    score = score_separation(estimates, references, references.sum(axis=0))
    assert score.excluded_non_finite == 1 and math.isfinite(score.mean_si_snri)
    assert score.mean_si_snri == pytest.approx(score.si_snri[0] if score.permutation == (0, 1) else score.si_snri[1])


def test_quality_leaves_a_silent_reference_unscored():
    speech = speech_like(2.0, 8000, 5)
    references = np.stack([speech, np.zeros_like(speech)])
    scores = quality_scores(references, references, speech + 0.01, 8000)
    assert math.isnan(scores["pesq_hailo_src2"]) and math.isnan(scores["stoi_mixture_s2"])
    assert scores["pesq_hailo_mean"] == scores["pesq_hailo_src1"] > 4.0
    assert scores["stoi_hailo_mean"] == scores["stoi_hailo_src1"]
