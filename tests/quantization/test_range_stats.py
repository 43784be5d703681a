"""Ranges gathered a chunk of tiles at a time equal the ranges of all tiles at once."""

import numpy as np
import pytest

from convtasnet_hailo.hailo import quant_scheme as qs
from convtasnet_hailo.hailo import range_stats
from convtasnet_hailo.hailo.emulation import calibrate
from convtasnet_hailo.hailo.integer_ops import float_op
from convtasnet_hailo.hailo.layout import nhwc_to_nchw
from convtasnet_hailo.hailo.range_stats import RangeStats


def _all_at_once(stages, files):
    """The plain way: every tile of a stage in memory, percentiles of the first array of a name."""
    minmax, percentiles = {}, {}

    def note(name, array):
        lo, hi = float(array.min()), float(array.max())
        old = minmax.get(name)
        minmax[name] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))
        percentiles.setdefault(name, qs.percentile_ranges(array))

    for stage in stages:
        values = {p.name: nhwc_to_nchw(np.load(files[p.name])).astype(np.float64) for p in stage.inputs}
        for name, array in values.items():
            note(name, array)
        for op in stage.ops:
            values[op.output] = float_op(op, [values[n] for n in op.reads])
            note(op.output, values[op.output])
    return minmax, percentiles


def test_chunked_calibration_of_a_real_plan_equals_all_tiles_at_once(tmp_path, monkeypatch):
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import build_plan
    from convtasnet_hailo.quantization.calibration import make_calibration
    from tests.conftest import TINY, speech_like

    plan = build_plan(random_model(TINY, seed=1))
    files = make_calibration(plan, 16, [speech_like(2.0, 8000, 7)], tmp_path / "calib", 40)
    monkeypatch.setattr(range_stats, "CHUNK_TILES", 7)  # chunks that do not divide the 40 tiles
    monkeypatch.setattr(qs, "PERCENTILE_SAMPLE", 5000)  # the sampled branch on a tiny model
    chunked = calibrate(list(plan.stages), files)
    minmax, percentiles = _all_at_once(list(plan.stages), files)
    assert chunked.tiles == 40 and set(chunked.minmax) == set(minmax)
    for name, (lo, hi) in minmax.items():
        assert chunked.minmax[name] == pytest.approx((lo, hi), rel=1e-12, abs=1e-15)
        for p, pair in percentiles[name].items():
            assert chunked.percentiles[name][p] == pytest.approx(pair, rel=1e-12, abs=1e-15)


def test_the_percentile_sample_is_the_one_drawn_from_the_whole_array():
    rng = np.random.default_rng(1)
    whole = rng.standard_normal((50, 3, 1, 2000))  # 300,000 values, over a sample of 2**16
    stats = RangeStats()
    original = qs.PERCENTILE_SAMPLE
    try:
        qs.PERCENTILE_SAMPLE = 1 << 16
        for first in range(0, 50, 8):
            stats.note("x", whole[first : first + 8], first, 50)
        stats.end_stage()
        assert stats.percentiles["x"] == qs.percentile_ranges(whole)
    finally:
        qs.PERCENTILE_SAMPLE = original
    assert stats.minmax["x"] == (whole.min(), whole.max())


def test_the_onnxruntime_reader_gives_the_files_tiles_in_batches_as_asked(tmp_path):
    from types import SimpleNamespace

    from convtasnet_hailo.quantization.ort_crosscheck import _TileReader

    rng = np.random.default_rng(2)
    files = {}
    for name in ("a", "b"):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], rng.standard_normal((10, 1, 6, 3)).astype(np.float32))  # NHWC
    stage = SimpleNamespace(inputs=[SimpleNamespace(name="a"), SimpleNamespace(name="b")])
    reader = _TileReader(stage, files, batch=4)
    batches = list(iter(reader.get_next, None))
    assert [len(b["a"]) for b in batches] == [4, 4, 2]
    for name in ("a", "b"):
        whole = nhwc_to_nchw(np.load(files[name]))
        np.testing.assert_array_equal(np.concatenate([b[name] for b in batches]), whole)
        assert batches[0][name].dtype == np.float32
