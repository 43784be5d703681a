"""`stream --live` against the sounddevice TEST DOUBLE, which plays a recording as the
microphone at real-time pace: the written and played output equals the offline model on the
captured input, overflows and underruns are counted, Ctrl-C leaves whole WAVs."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile

from convtasnet_hailo.cli import main
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import RANDOM_PRESETS
from convtasnet_hailo.runtime.separator import reference_separation
from tests.conftest import assert_within_contract, speech_like
from tests.doubles import sound as sound_double

CAUSAL = dataclasses.replace(RANDOM_PRESETS["tiny"], causal=True, norm_type=NormType.CLN)


@pytest.fixture
def live_setup(tmp_path):
    model_path = tmp_path / "causal.pth"
    save_model(random_model(CAUSAL, seed=3), model_path)
    recording = tmp_path / "mic.wav"
    soundfile.write(recording, speech_like(1.5, 8000, 7), 8000, subtype="FLOAT")
    return model_path, recording


def _offline_check(model_path, out, stem="live"):
    model = load_model(str(model_path))[0]
    captured, _ = soundfile.read(out / f"{stem}_input.wav", dtype="float32")
    written = np.stack([soundfile.read(out / f"{stem}_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    assert written.shape[-1] == len(captured) > 0
    assert_within_contract(written, reference_separation(model, captured), "live output vs offline")
    return written


@pytest.mark.parametrize("plan", ["rf-windows", "per-hop", "stateful"])
def test_the_live_loop_equals_the_offline_model_and_counts_what_the_card_reports(
    live_setup, tmp_path, monkeypatch, plan
):
    model_path, recording = live_setup
    sd = sound_double.install(monkeypatch, recording, overflow="3,5")
    out = tmp_path / "live"
    assert (
        main(
            [
                "stream",
                "--live",
                "1.2",
                "--model",
                str(model_path),
                "--hop-ms",
                "8",
                "--plan",
                plan,
                "--play",
                "both",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "stream_run.json").read_text())
    assert record["stream_plan"]["plan"] == plan.replace("-", "_")
    assert record["live"]["input_overflows"] == 2 and record["live"]["interrupted"] is False
    assert "playback_underruns" in record["live"] and record["parity_vs_offline"]["all_close"]
    assert record["parity_vs_offline"]["samples_compared"] == int(1.2 * 8000) // 64 * 64
    assert record["latency"]["host_ms_per_hop"]["p50"] >= 0
    written = _offline_check(model_path, out)
    # what the card played (source 1 left, source 2 right), blocks of silence where the loop was
    # late (underruns) taken out, is the written output from its start
    played = sd.PLAYED[0].reshape(-1, 64, 2)
    sounding = played[np.abs(played).max(axis=(1, 2)) > 0].reshape(-1, 2).T
    assert sounding.shape[-1] > 0 and played.shape[-1] == 2
    np.testing.assert_allclose(sounding, written[:, : sounding.shape[-1]], atol=1e-6)


def test_ctrl_c_leaves_whole_wavs(live_setup, tmp_path, monkeypatch):
    model_path, recording = live_setup
    sound_double.install(monkeypatch, recording, interrupt_after="8")
    out = tmp_path / "live"
    assert main(["stream", "--live", "5", "--model", str(model_path), "--hop-ms", "8", "--out", str(out)]) == 130
    record = json.loads((out / "stream_run.json").read_text())
    assert record["live"]["interrupted"] is True and record["latency"]["hops"] >= 1
    assert record["stream_plan"]["plan"] == "stateful"  # auto on a CPU backend
    _offline_check(model_path, out)  # readable, complete, and equal to the offline model


def test_play_names_a_source(live_setup, tmp_path, monkeypatch, capsys):
    model_path, recording = live_setup
    sound_double.install(monkeypatch, recording)
    assert main(["stream", "--live", "1", "--model", str(model_path), "--play", "3", "--out", str(tmp_path / "o")]) == 2
    assert "--play '3': a source number 1..2, or both" in capsys.readouterr().err


def test_a_card_that_stops_delivering_ends_the_stream_with_whole_wavs(live_setup, tmp_path, monkeypatch, capsys):
    """Issue 39: no hang on a stalled or unplugged card: the loop stops after its stall timeout,
    the WAVs are whole and equal to the offline model, the record says so, exit 1."""
    model_path, recording = live_setup
    sound_double.install(monkeypatch, recording, stall_after="6")
    out = tmp_path / "live"
    assert main(["stream", "--live", "5", "--model", str(model_path), "--hop-ms", "8", "--out", str(out)]) == 1
    record = json.loads((out / "stream_run.json").read_text())
    assert record["live"]["stalled"] is True and record["live"]["interrupted"] is False
    assert record["latency"]["hops"] == 6
    assert "sound card stopped delivering" in capsys.readouterr().out
    _offline_check(model_path, out)


def test_sigterm_ends_a_live_stream_like_ctrl_c(live_setup, tmp_path, monkeypatch):
    """Issue 39: a process manager's SIGTERM during --live leaves whole WAVs and the run record."""
    model_path, recording = live_setup
    sound_double.install(monkeypatch, recording, sigterm_after="8")
    out = tmp_path / "live"
    assert main(["stream", "--live", "5", "--model", str(model_path), "--hop-ms", "8", "--out", str(out)]) == 130
    record = json.loads((out / "stream_run.json").read_text())
    assert record["live"]["interrupted"] is True and record["latency"]["hops"] >= 1
    _offline_check(model_path, out)
