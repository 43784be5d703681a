"""The public Python API: what the commands do, as functions."""

import dataclasses

import numpy as np

import convtasnet_hailo
from convtasnet_hailo import open_pipeline, run_parity
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.pipeline.separator import reference_separation
from tests.conftest import TINY, assert_within_contract, speech_like


def test_the_api_is_exported_from_the_package_root():
    assert set(convtasnet_hailo.__all__) >= {"open_pipeline", "run_parity", "Pipeline", "Streamer"}


def test_separate_equals_the_model(tiny_checkpoint):
    wav = speech_like(0.7, 8000, 2)
    with open_pipeline(str(tiny_checkpoint), tile_w=16) as pipeline:
        assert (pipeline.sample_rate, pipeline.n_src) == (8000, 2)
        sources = pipeline.separate(wav)
    assert_within_contract(sources, reference_separation(load_model(str(tiny_checkpoint))[0], wav), "api separate")


def test_an_export_runs_through_the_api_without_its_checkpoint(tmp_path, tiny_checkpoint):
    from convtasnet_hailo.cli import main

    assert main(["export", "--model", str(tiny_checkpoint), "--tile-w", "16", "--out", str(tmp_path / "e")]) == 0
    wav = speech_like(0.7, 8000, 2)
    with open_pipeline(export_dir=tmp_path / "e", backend="onnxruntime") as pipeline:
        assert pipeline.plan.export_dir is not None
        sources = pipeline.separate(wav)
    assert_within_contract(sources, reference_separation(load_model(str(tiny_checkpoint))[0], wav), "api export")


def test_a_streamer_gives_back_every_sample_of_the_offline_model(tmp_path):
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), checkpoint)
    wav = speech_like(0.6, 8000, 5)
    with open_pipeline(str(checkpoint), hop_ms=8) as streamer:
        whole = len(wav) // streamer.hop * streamer.hop
        pieces = [streamer.push(wav[i:i + streamer.hop]) for i in range(0, whole, streamer.hop)]
        streamed = np.concatenate(pieces + [streamer.finish(wav[whole:])], axis=-1)
        scratch = streamer._scratch
        assert scratch.is_dir()
    assert not scratch.exists(), "close() leaves no scratch folder behind"
    assert_within_contract(streamed, reference_separation(load_model(str(checkpoint))[0], wav), "api stream")


def test_run_parity(tmp_path):
    assert run_parity(path="masker", tile_widths=(8,), runs_dir=tmp_path) is True
