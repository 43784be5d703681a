"""scripts/bench_denoisers.py: one scorer for every denoiser (delay, SI-SNRi, PESQ, STOI, latency, CPU)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import speech_like

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_denoisers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_denoisers_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _set(folder: Path, count: int = 2) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        clean = speech_like(1.5, 16000, k + 1).astype(np.float32) * 0.3
        noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
        for sub, audio in (("mix_single", noisy), ("s1", clean)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            sf.write(folder / sub / f"t_{k}.wav", audio, 16000, subtype="FLOAT")
        rows.append({"id": f"t_{k}", "snr_db": 3.0 + 5 * k})
    (folder / "pairs.json").write_text(json.dumps(rows))
    return folder


def test_a_delayed_clean_output_scores_as_clean_with_its_delay_as_latency(bench, tmp_path):
    items = bench.read_set(_set(tmp_path / "set"))
    clean_by_noisy = {id(noisy): clean for _, noisy, clean, _ in items}
    delayed = bench.Denoiser(
        "oracle",
        lambda x: np.concatenate([np.zeros(200), clean_by_noisy[id(x)]]),
        128,
        128,
        "the clean speech 200 samples late",
    )
    result = bench.bench(delayed, items)
    assert result["median_delay_ms"] == pytest.approx(1e3 * 200 / 16000)
    assert result["latency_ms"] == pytest.approx(1e3 * (200 + 128) / 16000)
    assert result["si_snri_db"] > 20 and result["stoi"] > 0.99 and result["pesq"] > 4.0
    assert result["pesq_input"] < result["pesq"] and result["cpu_ms_per_hop"] >= 0
    identity = bench.bench(bench.Denoiser("identity", lambda x: x, 128, 0, "the input"), items)
    assert identity["si_snri_db"] == pytest.approx(0.0, abs=1e-6) and identity["latency_ms"] == 0
    table = bench.markdown([result, identity])
    assert "| oracle |" in table and "| the noisy input |" in table and "SNR 0..5 dB" in table


@pytest.mark.parametrize("plan", ["stateful", "per-hop"])
def test_ours_streams_a_causal_16k_checkpoint_hop_by_hop(bench, tmp_path, plan):
    """The streamed output is the model's offline output; its latency is the hop plus L - S."""
    import torch

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import MaskAct, NormType
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    config = dataclasses.replace(
        TINY, n_src=1, causal=True, norm_type=NormType.CLN, mask_act=MaskAct.SIGMOID, sample_rate=16000
    )
    model = random_model(config, seed=4)
    save_model(model, tmp_path / "d.pth")
    denoiser = bench.ours(str(tmp_path / "d.pth"), 8.0, plan)
    wav = speech_like(0.9, 16000, 2).astype(np.float32)
    denoiser.prepare()
    streamed = denoiser.run(wav)
    with torch.no_grad():
        offline = model(torch.from_numpy(wav)[None])[0, 0].numpy()
    np.testing.assert_allclose(streamed[: len(offline)], offline, atol=1e-4 * max(1.0, np.abs(offline).max()))
    assert denoiser.hop == 128 and denoiser.hidden == 128 + config.kernel_size - config.stride


def test_ours8_runs_the_8_bit_emulation_a_noise_folder_advised(bench, tmp_path):
    """ours8: the checkpoint in the emulated 8-bit arithmetic with the advice of a `noise` run on
    it; its output is close to the float model's, not equal (quantized), and the latency is the
    streamed model's (hop plus L - S)."""
    import torch

    from convtasnet_hailo.cli import main
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import MaskAct, NormType
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    config = dataclasses.replace(
        TINY, n_src=1, causal=True, norm_type=NormType.CLN, mask_act=MaskAct.SIGMOID, sample_rate=16000
    )
    model = random_model(config, seed=4)
    save_model(model, tmp_path / "d.pth")
    items = bench.read_set(_set(tmp_path / "set"))
    noisy, clean = tmp_path / "set" / "mix_single" / "t_0.wav", tmp_path / "set" / "s1" / "t_0.wav"
    common = ["--model", str(tmp_path / "d.pth"), "--audio", str(noisy), "--s1", str(clean)]
    assert main(["noise", *common, "--calib-count", "64", "--target-db", "10", "--out", str(tmp_path / "n")]) == 0
    denoiser = bench.ours8(str(tmp_path / "d.pth"), str(tmp_path / "n"))
    wav = items[1][1]
    out = denoiser.run(wav)
    with torch.no_grad():
        offline = model(torch.from_numpy(wav)[None])[0, 0].numpy()
    error = out[: len(offline)] - offline
    assert 0 < np.abs(error).max() and 10 * np.log10(np.sum(offline**2) / np.sum(error**2)) > 10
    assert denoiser.hop == 128 and denoiser.hidden == 128 + config.kernel_size - config.stride
