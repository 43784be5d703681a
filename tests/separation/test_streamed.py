"""`separate` / `enhance` of long files in bounded memory (issue 39 item 6): the input read block
by block, segments stitched as they come, the sources written to temporaries and renamed at the
end. What is written equals the in-memory path's output for the same segments, a failure leaves
no file and no temporary, and the memory held does not grow with the input's length."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo import Separator
from convtasnet_hailo.audio.blocks import model_rate_blocks, scan_audio
from convtasnet_hailo.audio.io import load_audio, pcm_safe_gain
from convtasnet_hailo.audio.level import match_input
from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.separator import separate_segmented, stitched_blocks
from convtasnet_hailo.separation.written import write_sources
from tests.conftest import TINY, assert_within_contract, speech_like


def _fake_separator(seed: int = 0):
    """A deterministic two-source 'model' with context (a convolution) whose second source's sign
    depends on the whole segment, so that reordering, ramps and joins all matter."""
    taps = np.random.default_rng(seed).standard_normal((2, 33))

    def separate(wav: np.ndarray) -> np.ndarray:
        sign = 1.0 if float(wav.sum()) >= 0 else -1.0
        return np.stack([np.convolve(wav, taps[0], "same"), sign * np.convolve(wav, taps[1], "same")]).astype(
            np.float32
        )

    return separate


@pytest.mark.parametrize(("length", "segment", "overlap"), [(100000, 8000, 2000), (57000, 8000, 2500), (5000, 8000, 0)])
@pytest.mark.parametrize("block", [777, 65536])
def test_stitched_blocks_equal_the_whole_array_result(length, segment, overlap, block):
    wav = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    separate = _fake_separator()
    pairs = list(
        stitched_blocks(separate, (wav[i : i + block] for i in range(0, length, block)), length, segment, overlap)
    )
    assert np.array_equal(np.concatenate([m for m, _ in pairs]), wav)
    streamed = np.concatenate([e for _, e in pairs], axis=1)
    assert np.array_equal(streamed, separate_segmented(separate, wav, segment, overlap))  # the same additions


def _separate(tmp_path, checkpoint, wav, *options):
    sf.write(tmp_path / "long.wav", wav, 8000, subtype="FLOAT")
    out = tmp_path / "out"
    argv = ["separate", str(tmp_path / "long.wav"), "--model", str(checkpoint), "--out", str(out), *options]
    assert main(argv) == 0
    return out


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16"])
def test_separate_writes_what_the_in_memory_path_gives(tmp_path, tiny_checkpoint, subtype):
    """Small segments on a 6 s input: the written sources equal the API's in-memory result for
    the same segments (and its PCM gain), within the float contract (PCM: within a PCM step)."""
    wav = 30.0 * speech_like(6.0, 8000, 9)  # loud: the PCM gain applies
    out = _separate(tmp_path, tiny_checkpoint, wav, "--segment", "1", "--overlap", "0.25", "--subtype", subtype)
    with Separator.from_checkpoint(tiny_checkpoint, segment=1, overlap_seconds=0.25) as separator:
        expected = separator.separate_file(tmp_path / "long.wav")
    gain = pcm_safe_gain(expected, subtype)
    written = np.stack([sf.read(out / f"long_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    record = json.loads((out / "separate_run.json").read_text())["files"][0]
    assert record["gain"] == gain and (gain < 1.0) == (subtype == "PCM_16")
    if subtype == "FLOAT":
        assert_within_contract(written, expected, "streamed separate")
    else:
        assert np.abs(written - expected * gain).max() <= 1 / 32768
    assert sorted(p.name for p in out.iterdir()) == ["long_s1.wav", "long_s2.wav", "separate_run.json"]


def test_enhance_level_match_from_summed_dot_products(tmp_path):
    """A one-output model: the level gain summed over blocks equals the whole-output gain, and
    the written output equals the in-memory output times it."""
    checkpoint = tmp_path / "one.pth"
    save_model(random_model(dataclasses.replace(TINY, n_src=1), seed=3), checkpoint)
    wav = speech_like(5.0, 8000, 4)
    sf.write(tmp_path / "noisy.wav", wav, 8000, subtype="FLOAT")
    out = tmp_path / "out"
    argv = ["enhance", str(tmp_path / "noisy.wav"), "--model", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--segment", "1.5", "--overlap", "0.5", "--subtype", "FLOAT"]) == 0
    with Separator.from_checkpoint(checkpoint, segment=1.5, overlap_seconds=0.5) as separator:
        raw = separator.separate_file(tmp_path / "noisy.wav")[0]
    level = match_input(raw, wav)
    record = json.loads((out / "enhance_run.json").read_text())["files"][0]["level"]
    assert record["gain"] == pytest.approx(abs(level.gain), rel=1e-12)
    assert record["sign"] == (-1 if level.gain < 0 else 1)
    assert_within_contract(sf.read(out / "noisy_enhanced.wav", dtype="float32")[0], raw * level.gain, "enhanced")


def _interrupting(pairs, after: int):
    for index, pair in enumerate(pairs):
        if index == after:
            raise KeyboardInterrupt
        yield pair


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16"])
def test_an_interrupted_write_leaves_no_file_and_no_temporary(tmp_path, subtype):
    wav = np.random.default_rng(1).standard_normal(50000).astype(np.float32) * 0.1
    pairs = stitched_blocks(_fake_separator(), [wav], len(wav), 8000, 2000)
    (tmp_path / "kept.wav").write_bytes(b"finished before")
    targets = [tmp_path / "x_s1.wav", tmp_path / "x_s2.wav"]
    with pytest.raises(KeyboardInterrupt):
        write_sources(_interrupting(pairs, 3), targets, 8000, subtype, False, "x.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["kept.wav"]


def test_non_finite_output_is_refused_and_nothing_written(tmp_path):
    pairs = [(np.zeros(4, np.float32), np.ones((2, 4), np.float32)), (np.zeros(4, np.float32), np.full((2, 4), np.nan))]
    with pytest.raises(UserError, match="NaN/Inf"):
        write_sources(iter(pairs), [tmp_path / "a.wav", tmp_path / "b.wav"], 8000, "PCM_16", False, "x.wav")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (8000, 2), (16000, 2), (44100, 1)])
def test_scanned_blocks_equal_load_audio(tmp_path, rate, channels):
    """The block reader gives load_audio's samples: stereo averaged, soxr's stream resampler
    equal to its one-shot resampler; the notes are the same."""
    frames = speech_like(9.0, rate, 3)[:, None] * np.array([1.0, 0.5][:channels])
    sf.write(tmp_path / "in.wav", frames, rate, subtype="PCM_24")
    scanned, loaded = scan_audio(tmp_path / "in.wav", 8000), load_audio(tmp_path / "in.wav", 8000)
    streamed = np.concatenate(list(model_rate_blocks(scanned)))
    assert scanned.frames == len(loaded.wav) and scanned.notes == loaded.notes
    assert np.array_equal(streamed, loaded.wav)


def test_scan_names_a_bad_sample_where_load_audio_does(tmp_path):
    wav = speech_like(20.0, 8000, 3).astype(np.float32)
    wav[150001] = np.nan  # in the third block
    sf.write(tmp_path / "bad.wav", wav, 8000, subtype="FLOAT")
    with pytest.raises(UserError) as loaded:
        load_audio(tmp_path / "bad.wav", 8000)
    with pytest.raises(UserError) as scanned:
        scan_audio(tmp_path / "bad.wav", 8000)
    assert str(scanned.value) == str(loaded.value) and "sample 150001" in str(loaded.value)
    stereo = np.stack([wav, -wav], axis=1)
    stereo[150001] = 0.0
    sf.write(tmp_path / "cancel.wav", stereo, 8000, subtype="FLOAT")
    with pytest.raises(UserError, match="cancel when averaged"):
        scan_audio(tmp_path / "cancel.wav", 8000)


def _peak_bytes(tmp_path, minutes: float) -> int:
    """tracemalloc's peak while ``minutes`` of audio are read, stitched in 10 s segments (the
    fake separator) and written as PCM_16 (both passes)."""
    rate = 8000
    path = tmp_path / f"in{minutes}.wav"
    with sf.SoundFile(str(path), "w", rate, 1, "FLOAT", format="WAV") as handle:
        for seed in range(int(minutes * 6)):
            handle.write(speech_like(10.0, rate, seed))
    scanned = scan_audio(path, rate)
    tracemalloc.start()
    try:
        pairs = stitched_blocks(_fake_separator(), model_rate_blocks(scanned), scanned.frames, 10 * rate, 2 * rate)
        write_sources(
            pairs, [tmp_path / f"o{minutes}_1.wav", tmp_path / f"o{minutes}_2.wav"], rate, "PCM_16", True, "x"
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input(tmp_path):
    """Four times the input, the same peak (numpy's buffers are traced): O(segment), not O(T)."""
    short, long = _peak_bytes(tmp_path, 2.0), _peak_bytes(tmp_path, 8.0)
    assert long < 1.1 * short + (1 << 20), (short, long)
    assert long < 8.0 * 60 * 8000 * 4  # less than the input's own float32 samples: never held whole
