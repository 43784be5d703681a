"""`stream --live` on a CPU runs the stateful graph (``--plan auto`` on the default backend) for a
cgLN model too, whose running sums the graph carries from hop to hop: against the sounddevice
TEST DOUBLE, with overflows reported and Ctrl-C mid-stream, the WAVs are whole and equal the
offline model on the captured input; the record names the plan and counts the overflows."""

import dataclasses
import json

import numpy as np
import soundfile

from convtasnet_hailo.cli import main
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import MaskAct, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import RANDOM_PRESETS
from convtasnet_hailo.runtime.separator import reference_separation
from tests.conftest import assert_within_contract, speech_like
from tests.doubles import sound as sound_double

CGLN = dataclasses.replace(
    RANDOM_PRESETS["tiny"], causal=True, norm_type=NormType.CGLN, n_src=3, mask_act=MaskAct.SIGMOID
)


def test_live_cgln_on_the_stateful_plan_counts_overflows_and_ctrl_c_leaves_exact_wavs(tmp_path, monkeypatch):
    model_path = tmp_path / "cgln.pth"
    save_model(random_model(CGLN, seed=5), model_path)
    recording = tmp_path / "mic.wav"
    soundfile.write(recording, speech_like(2.0, 8000, 3), 8000, subtype="FLOAT")
    sound_double.install(monkeypatch, recording, overflow="2,4,6", interrupt_after="12")
    out = tmp_path / "live"
    args = ["stream", "--live", "5", "--model", str(model_path), "--hop-ms", "16", "--out", str(out)]
    assert main(args) == 130  # interrupted: the stream finished, its WAVs closed whole
    record = json.loads((out / "stream_run.json").read_text())
    assert record["stream_plan"]["plan"] == "stateful" and record["stream_plan"]["chosen_by"] == "cpu_backend"
    assert record["live"]["interrupted"] is True and record["live"]["input_overflows"] == 3
    assert record["latency"]["stage_calls_per_hop"] <= 1.0  # one graph call per hop (the flush adds none)
    captured, _ = soundfile.read(out / "live_input.wav", dtype="float32")
    assert len(captured) == record["latency"]["hops"] * 128 > 0
    written = np.stack([soundfile.read(out / f"live_s{i}.wav", dtype="float32")[0] for i in (1, 2, 3)])
    assert written.shape == (3, len(captured))
    offline = reference_separation(load_model(str(model_path))[0], captured)
    assert_within_contract(written, offline, "live cgLN stream on the stateful plan vs offline")
