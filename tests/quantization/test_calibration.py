"""The calibration draw: a uniform, paired, machine-independent sample kept in bounded memory."""

import numpy as np

from convtasnet_hailo.hailo.layout import nchw_to_nhwc
from convtasnet_hailo.quantization import calibration
from convtasnet_hailo.quantization.calibration import _tile_keys, _TileSample, make_calibration


def _batches(total: int, sizes=(3, 5, 7)):
    """Tiles (N, 1, 1, 1) numbered 0..total-1, in batches of varying size."""
    first, k = 0, 0
    while first < total:
        n = min(sizes[k % len(sizes)], total - first)
        yield np.arange(first, first + n, dtype=np.float32).reshape(n, 1, 1, 1)
        first, k = first + n, k + 1


def _reference_sample(batches, count: int) -> np.ndarray:
    """The bottom-k draw done the plain way: every tile in memory, the ``count`` smallest keys."""
    tiles = np.concatenate(list(batches))
    keys = _tile_keys(0, len(tiles))
    return tiles[np.sort(np.argsort(keys)[:count])]


def test_the_sample_holds_count_tiles_in_order_in_a_scratch_file_of_count_slots(tmp_path):
    sample = _TileSample(16, tmp_path / "slots")
    for batch in _batches(1000):
        sample.add(batch)
        assert len(sample.keys) <= 16, "memory holds the keys of the sample only"
    assert (tmp_path / "slots").stat().st_size == 16 * 4, "the tiles wait in count slots on disk"
    drawn = sample.drawn().ravel()
    assert len(drawn) == 16 and len(set(drawn)) == 16
    assert np.all(np.diff(drawn) > 0), "tiles come back in the order they came"
    np.testing.assert_array_equal(sample.drawn(), _reference_sample(_batches(1000), 16))


def test_the_written_file_is_np_saves_nhwc_of_the_sample_and_the_scratch_is_removed(tmp_path):
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((n, 3, 1, 5)).astype(np.float32) for n in (4, 9, 2, 30, 1)]
    sample = _TileSample(7, tmp_path / "slots")
    for batch in batches:
        sample.add(batch)
    written = sample.write(tmp_path / "x.npy", chunk=3)
    expected = tmp_path / "expected.npy"
    np.save(expected, nchw_to_nhwc(_reference_sample(batches, 7)))
    assert written.read_bytes() == expected.read_bytes()
    assert not (tmp_path / "slots").exists()


def test_inputs_at_the_same_positions_are_drawn_together_however_batched(tmp_path):
    a, b = _TileSample(10, tmp_path / "a"), _TileSample(10, tmp_path / "b")
    for batch in _batches(300, (4,)):
        a.add(batch)
    for batch in _batches(300, (1, 9, 2)):
        b.add(batch)
    np.testing.assert_array_equal(a.drawn(), b.drawn())


def test_the_draw_is_uniform_over_positions():
    keys = _tile_keys(0, 100_000)
    chosen = np.sort(np.argpartition(keys, 9_999)[:10_000])
    counts = np.bincount(chosen // 10_000, minlength=10)
    assert counts.min() > 850 and counts.max() < 1150  # 10% of each tenth, within 15%


def test_fewer_tiles_than_the_count_keeps_them_all(tmp_path):
    sample = _TileSample(64, tmp_path / "slots")
    for batch in _batches(20):
        sample.add(batch)
    np.testing.assert_array_equal(sample.drawn().ravel(), np.arange(20))


def test_calibration_files_hold_the_sampled_tiles_of_the_real_plan(tmp_path):
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import build_plan
    from tests.conftest import TINY, speech_like

    plan = build_plan(random_model(TINY, seed=1))
    audio = [speech_like(1.0, 8000, seed) for seed in (4, 5)]
    files = make_calibration(plan, 16, audio, tmp_path / "calib", 6)
    first = plan.stages[0].inputs[0].name
    tiles = np.load(files[first])
    assert tiles.shape[0] == 6 and tiles.dtype == np.float32
    again = make_calibration(plan, 16, audio, tmp_path / "again", 6)
    np.testing.assert_array_equal(np.load(again[first]), tiles)
    assert calibration.SEED == 0


def test_calibration_audio_below_the_models_rate_is_said_with_both_rates(tmp_path, caplog):
    """noise and compile read calibration audio the same way (files, folders, LibriMix CSVs); audio
    recorded below the model's rate is upsampled, and a warning names both rates."""
    import logging

    import soundfile

    from convtasnet_hailo.compile.orchestrate import calibration_audio
    from tests.conftest import speech_like

    folder = tmp_path / "calib"
    folder.mkdir()
    soundfile.write(folder / "a.wav", speech_like(0.5, 8000, 1), 8000)
    soundfile.write(folder / "b.wav", speech_like(0.5, 16000, 2), 16000)
    with caplog.at_level(logging.WARNING, logger="convtasnet_hailo"):
        audio = calibration_audio([str(folder)], 16000, n_src=1)
    assert [len(a) for a in audio] == [8000, 8000]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 of 2 recording(s) at 8000 Hz, below the model's 16000 Hz" in warning and "--calib" in warning
