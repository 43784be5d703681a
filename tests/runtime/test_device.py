"""The device side without PyTorch: `separate` and `stream` from an export folder, in a process
where torch, onnx and matplotlib cannot be imported, give the torch path's outputs."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from convtasnet_hailo.cli import main
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import TINY
from tests.conftest import assert_within_contract, speech_like

NO_TORCH = Path(__file__).with_name("no_torch.py")
CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)


def _no_torch(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(NO_TORCH), *args], capture_output=True, text=True, timeout=300, env=environment
    )


def _sources(folder: Path, stem: str) -> np.ndarray:
    return np.stack([soundfile.read(folder / f"{stem}_s{i}.wav", dtype="float32")[0] for i in (1, 2)])


@pytest.fixture
def mixture(tmp_path):
    path = tmp_path / "mix.wav"
    soundfile.write(path, speech_like(1.3, 8000, 4), 8000, subtype="FLOAT")
    return path


def test_the_blocker_blocks_torch():
    result = _no_torch(["separate", "--help"])
    assert result.returncode == 0
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import runpy, sys; sys.argv = ['x']; "
            f"exec(open({str(NO_TORCH)!r}).read().split('if __name__')[0]); "
            "sys.meta_path.insert(0, _Blocked()); import torch",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and "blocked by the device-side test" in probe.stderr


@pytest.mark.parametrize(
    "config", [TINY, dataclasses.replace(TINY, norm_type=NormType.CGLN, causal=True)], ids=["gln", "cgln"]
)
def test_separate_from_an_export_without_torch_equals_the_torch_path(tmp_path, mixture, config):
    checkpoint = tmp_path / "model.pth"
    save_model(random_model(config, seed=3), checkpoint)
    export = tmp_path / "export"
    assert main(["export", "--model", str(checkpoint), "--tile-w", "16", "--out", str(export)]) == 0
    result = _no_torch(
        [
            "separate",
            str(mixture),
            "--export-dir",
            str(export),
            "--backend",
            "onnxruntime",
            "--out",
            str(tmp_path / "device"),
            "--subtype",
            "FLOAT",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        main(
            [
                "separate",
                str(mixture),
                "--model",
                str(checkpoint),
                "--export-dir",
                str(export),
                "--backend",
                "onnxruntime",
                "--tile-w",
                "16",
                "--out",
                str(tmp_path / "torch"),
                "--subtype",
                "FLOAT",
            ]
        )
        == 0
    )
    assert_within_contract(
        _sources(tmp_path / "device", "mix"), _sources(tmp_path / "torch", "mix"), "separate without torch"
    )
    record = json.loads((tmp_path / "device" / "separate_run.json").read_text())
    assert record["tile_w"] == 16 and "from the export" in record["model_source"]


def test_stream_from_an_export_without_torch_equals_the_torch_path(tmp_path, mixture):
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(CAUSAL, seed=4), checkpoint)
    export = tmp_path / "export"
    assert main(["export", "--model", str(checkpoint), "--tile-w", "8", "--out", str(export)]) == 0  # 8 ms hops
    result = _no_torch(
        [
            "stream",
            str(mixture),
            "--export-dir",
            str(export),
            "--backend",
            "onnxruntime",
            "--hop-ms",
            "8",
            "--out",
            str(tmp_path / "device"),
            "--subtype",
            "FLOAT",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no offline model to compare with" in result.stdout and "no stream_latency.png" in result.stdout
    assert (
        main(
            [
                "stream",
                str(mixture),
                "--model",
                str(checkpoint),
                "--plan",
                "per-hop",
                "--export-dir",
                str(export),
                "--backend",
                "onnxruntime",
                "--hop-ms",
                "8",
                "--out",
                str(tmp_path / "torch"),
                "--subtype",
                "FLOAT",
            ]
        )
        == 0
    )
    assert_within_contract(
        _sources(tmp_path / "device", "mix"), _sources(tmp_path / "torch", "mix"), "stream without torch"
    )
    assert json.loads((tmp_path / "device" / "stream_run.json").read_text())["parity_vs_offline"] is None


def test_a_stream_hop_the_export_was_not_made_for_is_refused_in_one_line(tmp_path, mixture):
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(CAUSAL, seed=4), checkpoint)
    assert main(["export", "--model", str(checkpoint), "--tile-w", "8", "--out", str(tmp_path / "export")]) == 0
    result = _no_torch(
        [
            "stream",
            str(mixture),
            "--export-dir",
            str(tmp_path / "export"),
            "--backend",
            "onnxruntime",
            "--hop-ms",
            "16",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert result.returncode == 2 and "pass --hop-ms 8" in result.stderr and "Traceback" not in result.stderr


def test_separate_on_hailo_runtime_from_an_export_without_torch(tmp_path, mixture, monkeypatch):
    """Compiled with the SDK double here; run on the HailoRT double in a process without torch."""
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    checkpoint = tmp_path / "model.pth"
    save_model(random_model(TINY, seed=3), checkpoint)
    export = tmp_path / "export"
    sdk_double.install(monkeypatch)
    assert main(["export", "--model", str(checkpoint), "--tile-w", "16", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    runtime_double.install(monkeypatch)
    hefs = export / "hailo" / "hailo8"
    env = {"PYTHONPATH": os.pathsep.join([str(runtime_double.DOUBLE_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = _no_torch(
        [
            "separate",
            str(mixture),
            "--export-dir",
            str(export),
            "--backend",
            "hailo_runtime",
            "--hef-dir",
            str(hefs),
            "--out",
            str(tmp_path / "device"),
            "--subtype",
            "FLOAT",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        main(
            [
                "separate",
                str(mixture),
                "--model",
                str(checkpoint),
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hefs),
                "--tile-w",
                "16",
                "--out",
                str(tmp_path / "torch"),
                "--subtype",
                "FLOAT",
            ]
        )
        == 0
    )
    assert_within_contract(
        _sources(tmp_path / "device", "mix"), _sources(tmp_path / "torch", "mix"), "hailo_runtime without torch"
    )


def test_a_host_command_on_a_device_install_says_what_to_install(tmp_path, mixture):
    checkpoint = tmp_path / "model.pth"
    save_model(random_model(TINY, seed=3), checkpoint)
    result = _no_torch(["separate", str(mixture), "--model", str(checkpoint), "--out", str(tmp_path / "out")])
    assert result.returncode == 2 and "pip install 'convtasnet-hailo[host]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_stream_on_hailo_runtime_from_an_export_without_torch(tmp_path, mixture, monkeypatch):
    """A causal model's per-hop export, compiled on the SDK double, streamed on the HailoRT double
    in a process without torch: the torch path's samples."""
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(CAUSAL, seed=4), checkpoint)
    export = tmp_path / "export"
    sdk_double.install(monkeypatch)
    assert main(["export", "--model", str(checkpoint), "--tile-w", "8", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    runtime_double.install(monkeypatch)
    hefs = export / "hailo" / "hailo8"
    env = {"PYTHONPATH": os.pathsep.join([str(runtime_double.DOUBLE_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = _no_torch(
        [
            "stream",
            str(mixture),
            "--export-dir",
            str(export),
            "--backend",
            "hailo_runtime",
            "--hef-dir",
            str(hefs),
            "--hop-ms",
            "8",
            "--out",
            str(tmp_path / "device"),
            "--subtype",
            "FLOAT",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        main(
            [
                "stream",
                str(mixture),
                "--model",
                str(checkpoint),
                "--plan",
                "per-hop",
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hefs),
                "--hop-ms",
                "8",
                "--out",
                str(tmp_path / "torch"),
                "--subtype",
                "FLOAT",
            ]
        )
        == 0
    )
    assert_within_contract(
        _sources(tmp_path / "device", "mix"),
        _sources(tmp_path / "torch", "mix"),
        "stream on hailo_runtime without torch",
    )
