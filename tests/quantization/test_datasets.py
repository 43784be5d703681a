"""Recording sets for `noise` and `finetune`: folders, LibriMix CSVs, seeded limits, and held-out
audio kept out of the calibration."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.quantization.datasets import load_set, recordings
from convtasnet_hailo.quantization.noise import parse_clipping


def _write(path, seed, seconds=0.5, rate=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate)).astype(np.float32), rate)


def test_a_folder_gives_its_audio_with_the_sources_beside_and_a_limit_draws_the_same_ones(tmp_path):
    for k in range(5):
        for folder, offset in (("mix_clean", 0), ("s1", 10), ("s2", 20)):
            _write(tmp_path / "set" / folder / f"m{k}.wav", k + offset)
    found = recordings([str(tmp_path / "set" / "mix_clean")], 2)
    assert [r.path.name for r in found] == [f"m{k}.wav" for k in range(5)] and all(r.sources for r in found)
    drawn = recordings([str(tmp_path / "set" / "mix_clean")], 2, limit=3)
    assert len(drawn) == 3 and drawn == recordings([str(tmp_path / "set" / "mix_clean")], 2, limit=3)
    audio = load_set(drawn, 8000)
    assert audio.sources is not None and audio.sources[0].shape == (2, len(audio.wavs[0]))
    assert audio.describe(8000)["recordings"] == 3


def test_held_out_recordings_leave_the_calibration_set(tmp_path):
    for k in range(3):
        _write(tmp_path / "calib" / f"c{k}.wav", k)
    calib = load_set(recordings([str(tmp_path / "calib")], 2), 8000)
    held = load_set(recordings([str(tmp_path / "calib" / "c1.wav")], 2), 8000)
    kept = calib.without(held.digests())
    assert [r.path.name for r in kept.recordings] == ["c0.wav", "c2.wav"]


def test_a_librimix_csv_gives_mixtures_with_their_sources(tmp_path):
    for name, seed in (("mix.wav", 0), ("s1.wav", 1), ("s2.wav", 2)):
        _write(tmp_path / name, seed)
    (tmp_path / "meta.csv").write_text(
        "mixture_ID,mixture_path,source_1_path,source_2_path,length\na,mix.wav,s1.wav,s2.wav,4000\n"
    )
    found = recordings([str(tmp_path / "meta.csv")], 2)
    assert len(found) == 1 and [p.name for p in found[0].sources] == ["s1.wav", "s2.wav"]
    with pytest.raises(UserError, match="does not exist"):
        recordings([str(tmp_path / "nothing")], 2)


def test_clipping_values_parse_or_are_refused():
    assert parse_clipping("auto") is None and parse_clipping("minmax") == (None, 1.0)
    assert parse_clipping("headroom:1.25") == (None, 1.25) and parse_clipping("percentile:99.99") == (99.99, 1.0)
    for bad in ("headroom:0.5", "percentile:100", "loud", "headroom:x"):
        with pytest.raises(UserError, match="--clipping"):
            parse_clipping(bad)
