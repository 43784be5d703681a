"""Every script in examples/ runs, as a user runs it, on tiny inputs (the Hailo and sound-card
ones on the test doubles)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile

from convtasnet_hailo.cli import main
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from tests.conftest import TINY, speech_like, write_librimix_tree

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DOUBLES = Path(__file__).resolve().parent / "doubles"


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _with_path(folder: Path, **env: str) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]), **env}


def test_every_example_is_tested():
    tested = {"separate_file.py", "stream_file.py", "stream_microphone.py", "run_on_hailo.py", "evaluate_librimix.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_separate_file(tmp_path, tiny_checkpoint):
    mixture = tmp_path / "mix.wav"
    soundfile.write(mixture, speech_like(0.6, 8000, 1), 8000, subtype="FLOAT")
    result = _run("separate_file.py", mixture, tmp_path / "out", "--model", tiny_checkpoint)
    assert [Path(line).name for line in result.stdout.split()] == ["separated_s1.wav", "separated_s2.wav"]
    assert soundfile.info(tmp_path / "out" / "separated_s1.wav").frames == 4800


def test_stream_file_prints_the_real_time_factor(tmp_path):
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), checkpoint)
    mixture = tmp_path / "mix.wav"
    soundfile.write(mixture, speech_like(0.61, 8000, 3), 8000, subtype="FLOAT")
    result = _run("stream_file.py", mixture, tmp_path / "out", "--model", checkpoint, "--hop-ms", "8")
    assert "RTF " in result.stdout and "in 76 hops of 8 ms" in result.stdout
    assert soundfile.info(tmp_path / "out" / "stream_s2.wav").frames == 4880  # every sample back, the partial hop too


def test_stream_microphone_on_the_sound_card_double(tmp_path):
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), checkpoint)
    recording = tmp_path / "microphone.wav"
    soundfile.write(recording, speech_like(1.0, 8000, 3), 8000, subtype="FLOAT")
    env = _with_path(
        DOUBLES / "sounddevice_double", SOUNDDEVICE_DOUBLE_INPUT=str(recording), SOUNDDEVICE_DOUBLE_SPEED="20"
    )
    result = _run(
        "stream_microphone.py", tmp_path / "out", "--seconds", "0.5", "--hop-ms", "8", "--model", checkpoint, env=env
    )
    assert "2 sources" in result.stdout
    assert soundfile.info(tmp_path / "out" / "live_s1.wav").frames == 62 * 64  # every sample of 62 hops back


def test_run_on_hailo_on_the_runtime_double(tmp_path, tiny_checkpoint, monkeypatch):
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    export = tmp_path / "export"
    sdk_double.install(monkeypatch)
    assert main(["export", "--model", str(tiny_checkpoint), "--tile-w", "16", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    mixture = tmp_path / "mix.wav"
    soundfile.write(mixture, speech_like(0.6, 8000, 1), 8000, subtype="FLOAT")
    env = _with_path(
        runtime_double.DOUBLE_ROOT,
        HAILO_DOUBLE_DEVICES=json.dumps(["0000:01:00.0"]),
        HAILO_DOUBLE_ARCH="hailo8",
        HAILO_DOUBLE_IO="float32",
    )
    result = _run(
        "run_on_hailo.py",
        mixture,
        tmp_path / "out",
        "--export-dir",
        export,
        "--hef-dir",
        export / "hailo" / "hailo8",
        env=env,
    )
    assert "on hailo_runtime" in result.stdout and (tmp_path / "out" / "hailo_s2.wav").is_file()


def test_evaluate_librimix(tmp_path, tiny_checkpoint):
    metadata = write_librimix_tree(tmp_path, n=2)
    result = _run("evaluate_librimix.py", metadata, "--model", tiny_checkpoint)
    assert "2 mixtures: mean SI-SNRi" in result.stdout
