"""scripts/denoise_data.py and `train_demo_model.py --denoise`: examples, loss, and resumable training."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convtasnet_hailo.model.config import MaskAct, NormType
from convtasnet_hailo.model.convtasnet import ConvTasNet
from convtasnet_hailo.model.source import TINY

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def data_module():
    sys.path.insert(0, str(SCRIPTS))  # denoise_data imports train_demo_model as the scripts do
    spec = importlib.util.spec_from_file_location("denoise_data", SCRIPTS / "denoise_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.modules.pop("train_demo_model", None)
    sys.path.remove(str(SCRIPTS))


def _pool(module, count: int, seconds: float, seed: int, speech: bool):
    """Harmonic 'speakers' (speech) or coloured noise 'recordings', as the corpus stores them."""
    rng = np.random.default_rng(seed)
    waves = []
    for i in range(count):
        n = int(seconds * module.RATE * rng.uniform(0.6, 1.0))
        t = np.arange(n) / module.RATE
        wave = (
            np.sin(2 * np.pi * (110 + 30 * i) * t) * np.sin(np.pi * 3 * t) ** 2
            if speech
            else np.cumsum(rng.standard_normal(n)) * 0.01
        )
        waves.append((0.3 * wave / np.abs(wave).max()).astype(np.float32))
    audio = np.concatenate([np.round(w * 32767).astype(np.int16) for w in waves])
    return module.Pool(
        audio,
        np.array([len(w) for w in waves]),
        np.array([f"item{i}" for i in range(count)]),
        np.arange(count) if speech else None,
    )


def _data(module, rooms=()):
    return module.DenoiseData(
        _pool(module, 5, 1.0, 0, True),
        _pool(module, 3, 0.5, 1, False),
        _pool(module, 5, 1.0, 0, True),
        rooms,
        reverb_prob=0.5,
        synthetic=0.3,
        speed=0.3,
    )


def test_examples_keep_snr_level_and_length(data_module):
    rng = np.random.default_rng(3)
    data = _data(data_module, rooms=(np.array([1.0, 0.0, 0.3, 0.0, 0.1], np.float32),))
    for _ in range(40):
        target, noisy, info = data_module.noisy_example(data, 8000, rng)
        assert target.shape == noisy.shape == (8000,) and target.dtype == np.float32
        assert np.abs(noisy).max() <= 0.99 + 1e-6
        level = 20 * np.log10(np.sqrt(np.mean(noisy**2)))
        assert level <= data_module.LEVEL_DBFS[1] + 1e-3
        assert data_module.SNR_DB[0] <= info["snr_db"] <= data_module.SNR_DB[1]
        if not info["reverberant"]:  # the target is exactly the speech under the noise
            residual = noisy - target
            measured = 10 * np.log10(np.sum(target.astype(np.float64) ** 2) / np.sum(residual.astype(np.float64) ** 2))
            assert measured == pytest.approx(info["snr_db"], abs=0.05)


def test_loss_punishes_level_and_sign(data_module):
    """SI-SNR alone ignores a wrong gain or a flipped sign; the denoiser's loss does not."""
    torch.manual_seed(0)
    target = torch.randn(2, 1600)
    exact = data_module.denoise_loss(target[:, None], target)
    for wrong in (-target, 3 * target, 0.1 * target):
        assert data_module.denoise_loss(wrong[:, None], target) > exact + 5


def test_denoise_training_resumes_exactly(data_module, tmp_path):
    script = sys.modules.get("train_demo_model") or importlib.import_module("train_demo_model")
    config = dataclasses.replace(
        TINY, n_src=1, causal=True, norm_type=NormType.CLN, mask_act=MaskAct.SIGMOID, sample_rate=16000
    )
    rng = np.random.default_rng(9)
    validation = [
        tuple(torch.from_numpy(x) for x in data_module.noisy_example(_data(data_module), 4000, rng)[:2])
        for _ in range(2)
    ]

    def piece(folder: Path, steps: int):
        torch.set_num_threads(1)
        torch.manual_seed(1)
        model = ConvTasNet(config).train()
        options = script.TrainOptions(
            out=folder / "d.pth",
            state=folder / "d.state.pt",
            history=folder / "h.jsonl",
            max_steps=steps,
            batch=2,
            seconds=0.25,
            eval_every=2,
            rate=16000,
            resume_keys={"seed": 0},
        )
        task = data_module.DenoiseTask(_data(data_module), validation)
        return model, script.train(options, model, None, None, report=lambda _: None, task=task)

    straight, result = piece(tmp_path / "straight", 4)
    piece(tmp_path / "pieces", 2)
    resumed, again = piece(tmp_path / "pieces", 4)
    assert result["step"] == again["step"] == 4 and again["piece"] == 2
    for (name, x), y in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=False):
        assert torch.equal(x, y), name
    history = (tmp_path / "pieces" / "h.jsonl").read_text().splitlines()
    assert len(history) == 2 and all('"val_snr"' in line and '"val_si_snri"' in line for line in history)
