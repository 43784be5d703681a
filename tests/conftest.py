"""Shared fixtures: tiny model configurations (fast) and helpers."""

from __future__ import annotations

import pytest

from convtasnet_hailo.model.config import ConvTasNetConfig

#: A tiny model shaped like the real one: few channels, two repeats of three blocks.
TINY = ConvTasNetConfig(n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=2)


@pytest.fixture
def tiny_config() -> ConvTasNetConfig:
    return TINY


def speech_like(seconds: float, rate: int, seed: int):
    """A deterministic harmonic signal with a syllable envelope (float32, peak about 0.5)."""
    from convtasnet_hailo.parity.runner import probe_waveform

    return probe_waveform(int(seconds * rate), rate, seed)


def write_librimix_tree(root, n: int = 3, rate: int = 8000, seconds: float = 0.5):
    """A tiny LibriMix-format set: wav8k/min/test/{mix_clean,s1,s2} + metadata CSV. Returns the CSV."""
    import csv

    import soundfile as sf

    base = root / "Libri2Mix" / "wav8k" / "min" / "test"
    rows = []
    for i in range(n):
        mixture_id = f"{100 + i}-1-000{i}_{200 + i}-2-000{i}"
        s1, s2 = speech_like(seconds, rate, 2 * i), 0.7 * speech_like(seconds, rate, 2 * i + 1)
        for folder, wav in (("s1", s1), ("s2", s2), ("mix_clean", s1 + s2)):
            (base / folder).mkdir(parents=True, exist_ok=True)
            sf.write(base / folder / f"{mixture_id}.wav", wav, rate, subtype="FLOAT")
        rows.append({"mixture_ID": mixture_id, "mixture_path": str(base / "mix_clean" / f"{mixture_id}.wav"),
                     "source_1_path": str(base / "s1" / f"{mixture_id}.wav"),
                     "source_2_path": str(base / "s2" / f"{mixture_id}.wav"), "length": len(s1)})
    metadata = root / "Libri2Mix" / "metadata"
    metadata.mkdir(parents=True)
    with open(metadata / "mixture_test_mix_clean.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return metadata / "mixture_test_mix_clean.csv"


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A seeded tiny model saved as an Asteroid checkpoint file."""
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model

    path = tmp_path / "tiny.pth"
    save_model(random_model(TINY, seed=11), path)
    return path
