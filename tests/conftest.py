"""Shared fixtures: tiny model configurations (fast) and helpers."""

from __future__ import annotations

import pytest

from convtasnet_hailo.model.config import ConvTasNetConfig
from convtasnet_hailo.model.source import TINY  # the CLI's --random-preset tiny, one definition


def pytest_report_header(config):
    import os

    import torch

    from convtasnet_hailo.backends.onnxruntime_backend import default_threads

    return (
        f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch {torch.get_num_threads()}, "
        f"onnxruntime {default_threads() or 'one per core'}"
    )


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
        rows.append(
            {
                "mixture_ID": mixture_id,
                "mixture_path": str(base / "mix_clean" / f"{mixture_id}.wav"),
                "source_1_path": str(base / "s1" / f"{mixture_id}.wav"),
                "source_2_path": str(base / "s2" / f"{mixture_id}.wav"),
                "length": len(s1),
            }
        )
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


def assert_within_contract(actual, expected, what: str = "tensor") -> None:
    """The exactness contract (tolerances.py): max|actual - expected| <= tol * max(1, peak).
    Never an elementwise bound: that would judge one machine's float32 kernels."""
    import numpy as np

    from convtasnet_hailo.parity.compare import diff_tensor

    d = diff_tensor(what, np.asarray(actual), np.asarray(expected))
    assert d.all_close, f"{what}: max_abs {d.max_abs:.3g} over the bound {d.bound:.3g} (peak {d.peak:.3g})"


def compile_with_sdk_double(tmp_path, monkeypatch, checkpoint, *packing, compile_args=()):
    """Exports ``checkpoint`` at tile_w 16 (``packing``: export options) and compiles it with the
    SDK TEST DOUBLE (``compile_args``; default hailo8): (model, export folder, HEF folder)."""
    from convtasnet_hailo.cli import main
    from convtasnet_hailo.model.checkpoint import load_model
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    arch = compile_args[compile_args.index("--hw-arch") + 1] if "--hw-arch" in compile_args else "hailo8"
    sdk_double.install(monkeypatch, dfc="5.1.0" if arch == "hailo10h" else "3.33.1")
    runtime_double.install(monkeypatch, arch=arch)  # compile reads each HEF's contexts with HailoRT's HEF reader
    export = tmp_path / "export"
    assert main(["export", "--model", str(checkpoint), "--tile-w", "16", "--out", str(export), *packing]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4", *compile_args]) == 0
    return load_model(str(checkpoint))[0], export, export / "hailo" / arch


@pytest.fixture
def compiled(tmp_path, monkeypatch, tiny_checkpoint):
    """A tiny model (15 stages) exported at tile_w 16 and compiled with the SDK double for
    hailo8 as activated packs: 2 single-context HEFs of 8 and 7 stages joined as networks."""
    return compile_with_sdk_double(tmp_path, monkeypatch, tiny_checkpoint, "--execution-mode", "activated_packs")


@pytest.fixture
def compiled_per_stage(tmp_path, monkeypatch, tiny_checkpoint):
    """The same with one HEF per stage (the default, ``--execution-mode scheduled_groups``)."""
    return compile_with_sdk_double(tmp_path, monkeypatch, tiny_checkpoint)
