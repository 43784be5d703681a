"""Ctrl-C (or a process manager's SIGTERM) during a multi-file `separate`: every finished file stays intact, no
partial WAV sits under a final name, and the run JSON lists exactly what was finished."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf

from tests.conftest import speech_like

SECONDS = 30.0


def _finished(out) -> int:
    try:
        return len(json.loads((out / "separate_run.json").read_text())["files"])
    except (FileNotFoundError, ValueError):  # not written yet (it is renamed into place whole)
        return 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_keeps_finished_files_and_leaves_no_partial_wav(tmp_path, tiny_checkpoint, signum):
    inputs = []
    for i in range(6):
        path = tmp_path / f"in{i}.wav"
        sf.write(path, speech_like(SECONDS, 8000, i), 8000, subtype="FLOAT")
        inputs.append(str(path))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convtasnet_hailo.cli",
            "separate",
            *inputs,
            "--model",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--tile-w",
            "16",
            "--segment",
            "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a shell running us in the background ignores SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not _finished(out):  # the run JSON records the first file as finished
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted; files already written are kept" in stderr and "Traceback" not in stderr
    written = sorted(p.name for p in out.iterdir() if p.suffix == ".wav")
    assert "in0_s1.wav" in written and "in5_s2.wav" not in written  # stopped part way
    for name in written:
        assert sf.info(out / name).frames == int(SECONDS * 8000)  # whole, readable files only
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no partial file left behind
    record = json.loads((out / "separate_run.json").read_text())
    assert record["complete"] is False
    listed = [o.split("/")[-1] for f in record["files"] for o in f["outputs"]]
    assert set(listed) <= set(written) and {"in0_s1.wav", "in0_s2.wav"} <= set(listed)
