"""One calibration input for noise, compile and build: the same defaults, the seeded split of one
--calib set into calibration and held-out judging audio, the rate warning, and the target."""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.quantization.datasets import (
    DEFAULT_CALIB_COUNT,
    DEFAULT_CALIB_FILES,
    Recording,
    split_calibration,
)
from convtasnet_hailo.quantization.noise_inputs import CalibrationSplit, split_noise_inputs


def _recordings(n: int) -> list[Recording]:
    return [Recording(tmp) for tmp in (f"r{k}.wav" for k in range(n))]


def test_the_split_is_seeded_disjoint_ordered_and_keeps_one_of_each():
    found = _recordings(20)
    calib, held = split_calibration(found, 0.25, seed=3)
    assert len(held) == 5 and len(calib) == 15 and not set(calib) & set(held)
    assert (calib, held) == split_calibration(found, 0.25, seed=3), "the same seed, the same split"
    assert held != split_calibration(found, 0.25, seed=4)[1], "another seed, another draw"
    assert calib == sorted(calib, key=found.index) and held == sorted(held, key=found.index)
    assert [len(part) for part in split_calibration(_recordings(2), 0.01)] == [1, 1]
    assert [len(part) for part in split_calibration(_recordings(3), 0.99)] == [1, 2]


def test_one_recording_cannot_be_split_and_a_share_is_a_share():
    with pytest.raises(UserError, match="at least 2"):
        split_calibration(_recordings(1), 0.2)
    for share in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError):
            split_calibration(_recordings(5), share)


def _source(rate: int, n_src: int = 2):
    """What the split reads of a model source: its rate and source count."""
    return SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(sample_rate=rate, n_src=n_src)))


def _folder(tmp_path, n: int, rate: int):
    folder = tmp_path / f"calib{rate}"
    folder.mkdir()
    for k in range(n):
        noise = 0.1 * np.random.default_rng(k).standard_normal(rate // 4).astype(np.float32)
        sf.write(folder / f"m{k:02d}.wav", noise, rate)
    return folder


def test_split_inputs_judge_on_held_out_audio_the_calibration_never_saw(tmp_path):
    folder = _folder(tmp_path, 30, 8000)
    split = CalibrationSplit((str(folder),), held_out_share=0.2, held_out_max=4, seed=1, calib_files=20)
    inputs, record = split_noise_inputs(_source(8000), split)
    assert len(record["held_out"]) == 4 and len(record["calibration"]) == 20 and record["recordings"] == 30
    assert not set(record["held_out"]) & set(record["calibration"])
    assert [str(r.path) for r in inputs.evaluation.recordings] == record["held_out"]
    assert inputs.judged_on is inputs.evaluation and not inputs.evaluation.digests() & inputs.calibration.digests()
    assert record == split_noise_inputs(_source(8000), split)[1], "seeded: the same split again"


def test_a_16k_model_given_8k_calibration_audio_is_warned_naming_both_rates(tmp_path, caplog):
    folder = _folder(tmp_path, 4, 8000)
    with caplog.at_level(logging.WARNING, logger="convtasnet_hailo"):
        split_noise_inputs(_source(16000), CalibrationSplit((str(folder),)))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("8000 Hz, below the model's 16000 Hz" in w for w in warnings), warnings


def test_noise_and_compile_default_to_the_same_calibration_count():
    from convtasnet_hailo.cli import verify
    from convtasnet_hailo.cli.main import build_parser

    parser = build_parser()
    noise = parser.parse_args(["noise", "--audio", "x.wav", "--out", "o"])
    compile_ = parser.parse_args(["compile", "--export-dir", "e"])
    assert noise.calib_count == compile_.calib_count == DEFAULT_CALIB_COUNT == verify.CALIB_COUNT
    assert noise.calib_files == DEFAULT_CALIB_FILES == verify.CALIB_FILES


def test_the_noise_target_defaults_to_a_loss_against_float_and_target_db_alone_is_the_only_target():
    from convtasnet_hailo.cli.verify import noise_target
    from convtasnet_hailo.quantization.noise_types import DEFAULT_TARGET_DB, DEFAULT_TARGET_LOSS_DB, Outcome, Target

    assert noise_target(None, None) == Target() == Target(DEFAULT_TARGET_DB, DEFAULT_TARGET_LOSS_DB)
    assert (DEFAULT_TARGET_LOSS_DB, DEFAULT_TARGET_DB) == (0.3, 25.0)
    assert noise_target(40.0, None) == Target(40.0, None)
    assert noise_target(None, 0.5) == Target(DEFAULT_TARGET_DB, 0.5)
    target = Target()
    assert target.met(Outcome([], 10.0, 11.8, {}), float_si_snri=12.0), "0.2 dB below float: met"
    assert not target.met(Outcome([], 50.0, 11.5, {}), float_si_snri=12.0), "the loss decides where sources exist"
    assert target.met(Outcome([], 25.5, None, {}), None) and not target.met(Outcome([], 24.0, None, {}), None)
    assert "0.3 dB below float" in target.describe() and ">= 25 dB" in target.describe()


def _record(**fields):
    record = {
        "target_reached": True,
        "target_described": "SI-SNRi at most 0.3 dB below float",
        "target_reached_on": "held-out",
        "n_layers_16bit": 0,
        "n_layers": 75,
        "advice": {"out_of_reach": None},
    }
    return {**record, **fields}


def test_a_missed_target_or_more_than_a_fifth_of_the_layers_at_16_bits_is_a_problem():
    from convtasnet_hailo.quantization.noise_record import advice_problems

    assert advice_problems(_record()) == [] and advice_problems(_record(n_layers_16bit=15)) == []
    (many,) = advice_problems(_record(n_layers_16bit=16))
    assert "16 of 75 layers (21%)" in many and "20%" in many
    reach = {"out_of_reach": {"all_units_16bit_si_snr_vs_float_db": 33.5}}
    (missed,) = advice_problems(_record(target_reached=False, advice=reach))
    assert "NOT reached" in missed and "33.50 dB" in missed and "0.3 dB below float" in missed


def test_noise_report_exits_1_for_a_problem_only_with_strict(tmp_path):
    from convtasnet_hailo.commands.noise import NoiseReport

    fields = {f.name: None for f in dataclasses.fields(NoiseReport)}
    for strict, problems, status in ((False, ("x",), 0), (True, ("x",), 1), (True, (), 0)):
        report = NoiseReport(**{**fields, "out": tmp_path, "problems": problems, "strict": strict, "record": {}})
        assert report.exit_status == status


def test_noise_settings_take_builds_layout_link_and_calibration_folder(tmp_path):
    from convtasnet_hailo.plan.cost_model import DeviceModel
    from convtasnet_hailo.plan.options import PlanOptions
    from convtasnet_hailo.quantization.noise_types import NoiseSettings

    plain = NoiseSettings(out=tmp_path / "noise")
    assert plain.calibration_folder == tmp_path / "noise" / "calib" and plain.calib_count == DEFAULT_CALIB_COUNT
    assert plain.device == DeviceModel() and plain.options == PlanOptions()
    build = NoiseSettings(
        out=tmp_path / "noise", calib_dir=tmp_path / "calib", options=PlanOptions(block_chan=64), device=DeviceModel()
    )
    assert build.calibration_folder == tmp_path / "calib" and build.options.block_chan == 64
