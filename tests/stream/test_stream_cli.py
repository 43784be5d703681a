"""`stream` end to end: simulated real time from a file, the report, and its refusals."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from convtasnet_hailo.assets import DEMO_MIXTURE
from convtasnet_hailo.cli import main


def _causal_tiny_checkpoint(tmp_path):
    import dataclasses

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    path = tmp_path / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), path)
    return path


def test_stream_a_file_reports_latency_and_equals_offline(tmp_path, capsys):
    model, out = _causal_tiny_checkpoint(tmp_path), tmp_path / "out"
    from convtasnet_hailo.assets import DEMO_SOURCES

    assert (
        main(
            [
                "stream",
                str(DEMO_MIXTURE),
                "--model",
                str(model),
                "--hop-ms",
                "4",
                "--s1",
                str(DEMO_SOURCES[0]),
                "--s2",
                str(DEMO_SOURCES[1]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "stream_run.json").read_text())
    latency = record["latency"]
    assert latency["hop_samples"] == 32 and latency["hops"] == -(-sf.info(DEMO_MIXTURE).frames // 32)
    assert latency["algorithmic_latency_ms"] == 1e3 * (32 + 8) / 8000
    assert (
        0
        < latency["per_hop_compute_ms"]["p50"]
        <= latency["per_hop_compute_ms"]["p95"]
        <= latency["per_hop_compute_ms"]["max"]
    )
    assert 0 <= latency["deadline_misses"] <= latency["hops"] and latency["rtf"] > 0
    assert record["parity_vs_offline"]["all_close"] and record["parity_vs_offline"]["si_snr_db"] > 60
    assert len(record["si_snr_db"]) == 2 and isinstance(record["si_snri_db"], float)
    assert 1.0 <= record["pesq_input"] <= 4.7 and 1.0 <= record["pesq_output"] <= 4.7  # NB PESQ at 8 kHz
    assert 0 <= record["stoi_input"] <= 1 and 0 <= record["stoi_output"] <= 1
    prediction = record["device_prediction"]
    assert prediction["device"] == "hailo8l" and prediction["calls_per_hop"] >= 1
    assert prediction["end_to_end_latency_ms"] > 4 + prediction["device_ms_per_hop"]
    for i in (1, 2):
        wav, rate = sf.read(out / f"mixture_s{i}.wav")
        assert rate == 8000 and len(wav) == sf.info(DEMO_MIXTURE).frames and np.abs(wav).max() > 0
    assert (out / "stream_latency.png").stat().st_size > 5000
    assert "algorithmic latency 5.0 ms" in capsys.readouterr().out


def test_stream_refuses_non_causal_models_bad_hops_and_live_without_a_sound_card(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["stream", str(DEMO_MIXTURE), "--random-preset", "tiny", "--out", out]) == 2
    assert "not causal" in capsys.readouterr().err
    model = str(_causal_tiny_checkpoint(tmp_path))
    assert main(["stream", str(DEMO_MIXTURE), "--model", model, "--hop-ms", "4.5", "--out", out]) == 2
    assert "whole number of encoder strides" in capsys.readouterr().err
    assert main(["stream", "--live", "2", "--model", model, "--out", out]) == 2
    assert "sounddevice" in capsys.readouterr().err or "sound card" in capsys.readouterr().err
    assert main(["stream", "--model", model, "--out", out]) == 2
    assert "input file, or --live" in capsys.readouterr().err


def test_stream_subtype_means_what_it_means_for_separate(tmp_path, capsys):
    """--subtype sets the WAVs' sample format, as for `separate`; a live stream, written before its
    peak is known, takes only FLOAT."""
    model, out = _causal_tiny_checkpoint(tmp_path), tmp_path / "out"
    assert (
        main(
            [
                "stream",
                str(DEMO_MIXTURE),
                "--model",
                str(model),
                "--hop-ms",
                "8",
                "--subtype",
                "PCM_24",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sf.info(out / "mixture_s1.wav").subtype == "PCM_24"
    assert json.loads((out / "stream_run.json").read_text())["subtype"] == "PCM_24"
    assert main(["stream", "--live", "1", "--model", str(model), "--subtype", "PCM_16", "--out", str(out)]) == 2
    assert "live WAVs are written as the hops come" in capsys.readouterr().err


def test_a_one_output_stream_is_written_at_the_input_level_and_sign_unless_raw_output(tmp_path):
    import dataclasses

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    model = tmp_path / "enh.pth"
    save_model(random_model(dataclasses.replace(TINY, n_src=1, causal=True, norm_type=NormType.CLN), seed=3), model)
    common = ["stream", str(DEMO_MIXTURE), "--model", str(model), "--hop-ms", "8", "--subtype", "FLOAT"]
    assert main([*common, "--out", str(tmp_path / "raw"), "--raw-output"]) == 0
    assert main([*common, "--out", str(tmp_path / "matched")]) == 0
    wav = sf.read(DEMO_MIXTURE)[0]
    raw, matched = (sf.read(tmp_path / d / "mixture_s1.wav")[0] for d in ("raw", "matched"))
    level = json.loads((tmp_path / "matched" / "stream_run.json").read_text())["level"]
    expected = np.dot(raw, wav) / np.dot(raw, raw)
    assert level["matched"] and abs(level["sign"] * level["gain"] / expected - 1) < 1e-4
    np.testing.assert_allclose(matched, raw * expected, rtol=1e-4, atol=1e-7)
    assert np.dot(matched, wav) > 0
    assert json.loads((tmp_path / "raw" / "stream_run.json").read_text())["level"]["matched"] is False
