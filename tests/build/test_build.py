"""`build` end to end with the SDK TEST DOUBLE (tests/doubles/sdk.py) and the HailoRT double
(compile reads each HEF's contexts with it): an Asteroid-written three-source 8 kHz checkpoint to
``B/report.md`` and ``B/device/``; killed during the compile and resumed, counting compiles."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convtasnet_hailo.build.report import report_path
from tests.conftest import speech_like

REPO = Path(__file__).resolve().parents[2]


def _asteroid_checkpoint(path: Path) -> Path:
    """A tiny three-source 8 kHz ConvTasNet saved as Asteroid's ``serialize()`` writes it."""
    import torch

    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY
    from tests.model.test_checkpoint import asteroid_package

    torch.save(asteroid_package(random_model(dataclasses.replace(TINY, n_src=3), seed=5)), path)
    return path


def _speech_folder(root: Path, n: int = 6, rate: int = 8000, seconds: float = 1.0) -> Path:
    """``root/mix_clean/*.wav`` with their three sources beside (``s1/ s2/ s3/``): CALIB."""
    import soundfile as sf

    for i in range(n):
        sources = [0.6 * speech_like(seconds, rate, 10 * i + k) for k in range(3)]
        for k, wav in enumerate(sources, 1):
            (root / f"s{k}").mkdir(parents=True, exist_ok=True)
            sf.write(root / f"s{k}" / f"clip{i}.wav", wav, rate, subtype="FLOAT")
        (root / "mix_clean").mkdir(exist_ok=True)
        sf.write(root / "mix_clean" / f"clip{i}.wav", sum(sources), rate, subtype="FLOAT")
    return root / "mix_clean"


@pytest.fixture
def inputs(tmp_path):
    return _asteroid_checkpoint(tmp_path / "tiny3.pth"), _speech_folder(tmp_path / "speech")


def _install_doubles(monkeypatch, calls: Path | None = None, behavior: dict | None = None) -> None:
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    sdk_double.install(monkeypatch, behavior=behavior, calls=calls)
    runtime_double.install(monkeypatch, arch="hailo8")


def _build_args(checkpoint: Path, calib: Path, out: Path) -> list[str]:
    return ["build", "--model", str(checkpoint), "--hw-arch", "hailo8", "--calib", str(calib), "--out", str(out)]


def _compiles(calls: Path) -> list[dict]:
    if not calls.is_file():
        return []
    return [row for row in map(json.loads, calls.read_text().splitlines()) if row["call"] == "compile"]


def test_build_writes_report_and_bundle(tmp_path, monkeypatch, inputs, capsys):
    from convtasnet_hailo.cli import main
    from convtasnet_hailo.runtime.bundle import read_bundle

    checkpoint, calib = inputs
    _install_doubles(monkeypatch)
    out = tmp_path / "B"
    assert main(_build_args(checkpoint, calib, out) + ["--calib-count", "16"]) == 0
    assert "bundle" in capsys.readouterr().out
    assert report_path(out).is_file() and (out / "plan.png").is_file() and (out / "noise.png").is_file()
    files = [p for p in (out / "device").rglob("*") if p.is_file()]
    assert any(p.suffix == ".hef" for p in files) and any(p.suffix == ".onnx" for p in files)
    assert not [p for p in files if p.suffix in (".npy", ".har", ".log") or p.stat().st_size > 50 * 2**20]
    assert not [p for p in (out / "export").rglob("*") if p.suffix in (".npy", ".har", ".log")]
    record = json.loads((out / "build.json").read_text())
    assert {n: s["status"] for n, s in record["steps"].items()} == dict.fromkeys(
        ("choose", "export", "split", "noise", "compile", "report", "bundle"), "done"
    )
    assert record["model"]["config"]["n_src"] == 3 and record["steps"]["export"]["outputs"]["parity"]["all_close"]
    assert (out / "device.tar.gz").is_file()
    bundle = read_bundle(out / "device")
    assert (bundle.hw_arch, bundle.job, bundle.model.n_src, bundle.model.sample_rate) == ("hailo8", "separate", 3, 8000)
    assert bundle.tile_w == record["steps"]["choose"]["outputs"]["tile_w"]


def _subprocess_env(calls: Path, behavior: dict) -> dict:
    doubles = REPO / "tests" / "doubles"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(doubles / "sdk_double"), str(doubles / "runtime_double"), str(REPO / "src"), str(REPO)]
    )
    env.update(
        HAILO_DOUBLE_BEHAVIOR=json.dumps(behavior),
        HAILO_DOUBLE_CALLS=str(calls),
        HAILO_DOUBLE_DFC="3.33.1",
        HAILO_DOUBLE_ARCH="hailo8",
        HAILO_DOUBLE_DEVICES='["0000:01:00.0"]',
        HAILO_DOUBLE_IO="float32",
    )
    return env


def test_killed_during_compile_resumes_without_recompiling(tmp_path, monkeypatch, inputs):
    """The double ends the process at the fourth stage's compile (``crash``: os._exit, as a kill
    would); ``--resume`` then compiles that stage and the ones after it, and no other."""
    from convtasnet_hailo.cli import main

    checkpoint, calib = inputs
    out, calls = tmp_path / "B", tmp_path / "calls.jsonl"
    argv = [sys.executable, "-m", "convtasnet_hailo.cli", *_build_args(checkpoint, calib, out), "--calib-count", "16"]
    killed = subprocess.run(
        argv, env=_subprocess_env(calls, {"tcn1_depth": "crash"}), capture_output=True, text=True, timeout=900
    )
    assert killed.returncode == 3, killed.stderr[-2000:]
    before = _compiles(calls)
    assert [c["behavior"] for c in before] == ["ok"] * (len(before) - 1) + ["crash"]
    record = json.loads((out / "build.json").read_text())
    assert record["steps"]["noise"]["status"] == "done" and "compile" not in record["steps"]
    stages = record["steps"]["export"]["outputs"]["stages"]

    calls.unlink()
    _install_doubles(monkeypatch, calls=calls)
    assert main(["build", "--resume", str(out)]) == 0
    after = _compiles(calls)
    assert len(after) == len(stages) - (len(before) - 1)  # the crashed stage and those after it, once each
    record = json.loads((out / "build.json").read_text())
    assert record["steps"]["compile"]["outputs"]["reused"] == len(before) - 1
    assert record["steps"]["compile"]["status"] == "done" and record["steps"]["bundle"]["status"] == "done"
    assert (out / "device" / "bundle.json").is_file()


def test_without_a_compiler_the_build_stops_resumable(tmp_path, monkeypatch, inputs, capsys):
    from convtasnet_hailo.cli import main

    checkpoint, calib = inputs
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)  # no Dataflow Compiler here
    out = tmp_path / "B"
    assert main(_build_args(checkpoint, calib, out) + ["--calib-count", "16", "--target-loss-db", "5"]) == 1
    printed = capsys.readouterr().out
    assert f"convtasnet-hailo build --resume {out}" in printed
    record = json.loads((out / "build.json").read_text())
    assert record["steps"]["compile"]["status"] == "pending" and report_path(out).is_file()
    assert not (out / "device").exists()


def test_resume_refuses_a_setting_that_disagrees(tmp_path, inputs, capsys):
    from convtasnet_hailo.build.record import BuildRecord, BuildSettings
    from convtasnet_hailo.cli import main

    checkpoint, calib = inputs
    out = tmp_path / "B"
    out.mkdir()
    BuildRecord(BuildSettings(str(checkpoint), "hailo8", (str(calib),)), {"file": "x.pth", "sha256": "0"}).write(out)
    assert main(["build", "--resume", str(out), "--hw-arch", "hailo8l"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--hw-arch hailo8l disagrees" in err[0]
    assert main(["build", "--model", str(checkpoint), "--out", str(tmp_path / "C")]) == 2
    assert "build needs --hw-arch, --calib" in capsys.readouterr().err
    assert main(_build_args(checkpoint, calib, out)) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_calibration_split_is_seeded_and_rates_are_named(tmp_path, caplog):
    from convtasnet_hailo.build.split import split_calibration, warn_rates

    calib = _speech_folder(tmp_path / "speech", n=8, rate=16000, seconds=0.2)
    first = split_calibration((str(calib),), 3, 0.25, seed=0)
    assert first == split_calibration((str(calib),), 3, 0.25, seed=0)
    assert len(first.heldout) == 2 and len(first.calibration) == 6
    assert not {r.path for r in first.heldout} & {r.path for r in first.calibration}
    assert all(r.sources for r in first.heldout)
    line = warn_rates(first, 8000)
    assert "16000 Hz" in line and "8000 Hz" in line and line in caplog.text
    assert warn_rates(first, 16000) is None
