"""A compile killed part way, resumed: only the unfinished stages compile again (the SDK double's
calls counted); a changed input compiles its stage again; the jobs of a dry run finished by one
command; calibration arrays never inside the export; `noise` advice bound to its model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.dfc import worker
from convtasnet_hailo.dfc.manifest import hef_files, read_compile_manifest
from convtasnet_hailo.runs.run_folder import read_tsv
from tests.doubles import sdk as sdk_double

STAGES = 15  # the tiny model's stages at tile_w 16
LIMIT = 50 * 1024 * 1024


def _export(tmp_path, *packing):
    export = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(export), *packing]) == 0
    return export


def _parsed(calls) -> list[str]:
    """The nets the double parsed since the file was last emptied (one per stage compile), emptied."""
    if not calls.is_file():
        return []
    nets = [json.loads(line)["net_name"] for line in calls.read_text().splitlines() if '"translate_onnx_model"' in line]
    calls.write_text("")
    return nets


def test_a_killed_compile_resumes_without_compiling_a_finished_stage(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls.jsonl"
    sdk_double.install(monkeypatch, calls=calls)
    export = _export(tmp_path)
    out = export / "hailo" / "hailo8"
    monkeypatch.setenv("HAILO_DOUBLE_INTERRUPT_AFTER", "5")
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 130
    first = _parsed(calls)
    assert len(first) == 6  # five HEFs made, the sixth stage killed in its compile
    # the kill left a true record: five stages compiled, the rest pending
    statuses = [s.status for s in read_compile_manifest(out).stages.values()]
    assert statuses.count("compiled") == 5 and statuses.count("pending") == STAGES - 5

    monkeypatch.delenv("HAILO_DOUBLE_INTERRUPT_AFTER")
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--resume"]) == 0
    resumed = _parsed(calls)
    assert sorted(resumed) == sorted(first[5:] + _stages_after(out, first[:6]))
    assert len(resumed) == STAGES - 5 and not set(resumed) & set(first[:5])
    assert "5 reused" in capsys.readouterr().out
    statuses = [s.status for s in read_compile_manifest(out).stages.values()]
    assert statuses.count("reused") == 5 and statuses.count("compiled") == STAGES - 5
    assert len(hef_files(out, list(read_compile_manifest(out).stages))) == STAGES
    rows = read_tsv(out / "compile_summary.tsv")
    assert [r["status"] for r in rows].count("reused") == 5 and len(rows) == STAGES

    # nothing left: a second resume, and a compile without --resume of the same inputs, compile nothing
    assert main(["compile", "--export-dir", str(export), "--resume"]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    assert _parsed(calls) == []


def _stages_after(out, parsed: list[str]) -> list[str]:
    """The nets of the stages the killed run never reached (plan order, from the job list)."""
    from convtasnet_hailo.dfc.pending import read_pending

    nets = [item.job.net_name for item in read_pending(out).stages]
    return [n for n in nets if n not in parsed]


def test_a_changed_input_compiles_its_stage_again(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls.jsonl"
    sdk_double.install(monkeypatch, calls=calls)
    export = _export(tmp_path)
    out = export / "hailo" / "hailo8"
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    assert len(_parsed(calls)) == STAGES
    job = json.loads((out / "jobs" / "tcn1_depth_t16_b0_default.json").read_text())
    (array_path,) = [tmp_path / p for p in job["calib_paths"]]
    array = np.load(array_path)
    np.save(array_path, array * 0.5)  # another calibration of that one stage's input
    assert main(["compile", "--export-dir", str(export), "--resume"]) == 0
    assert _parsed(calls) == [_net(out, "tcn1_depth")]
    # another calibration audio changes every stage's arrays: --resume refuses it, a compile takes it
    other = tmp_path / "other.wav"
    _noise_wav(other)
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--resume", "--calib", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--resume runs the jobs recorded" in err and "drop --calib" in err and len(err.splitlines()) == 1
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4", "--calib", str(other)]) == 0
    assert len(_parsed(calls)) == STAGES
    # another SDK version: nothing it made before is reused
    sdk_double.install(monkeypatch, calls=calls, dfc="3.33.2")
    assert main(["compile", "--export-dir", str(export), "--resume"]) == 0
    assert len(_parsed(calls)) == STAGES


def _net(out, stage: str) -> str:
    from convtasnet_hailo.dfc.pending import read_pending

    return next(item.job.net_name for item in read_pending(out).stages if item.job.stage == stage)


def _noise_wav(path, rate: int = 8000, seconds: float = 2.0) -> None:
    import soundfile as sf

    rng = np.random.default_rng(3)
    sf.write(path, (0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32), rate)


def test_the_jobs_of_a_dry_run_finish_with_one_command(tmp_path, monkeypatch, capsys):
    export = _export(tmp_path, "--networks-per-group", "8")
    out = export / "hailo" / "hailo8"
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--dry-run", "--calib-count", "4"]) == 0
    command = capsys.readouterr().out.splitlines()[-1].strip()
    assert command == f"python -m convtasnet_hailo.dfc.worker --pending {out}"
    calls = tmp_path / "calls.jsonl"
    sdk_double.install(monkeypatch, calls=calls)
    monkeypatch.setenv("HAILO_DOUBLE_INTERRUPT_AFTER", "1")  # the first pack joined, the second killed
    with pytest.raises(KeyboardInterrupt):
        worker.main(command.split()[3:])
    assert len(_parsed(calls)) == STAGES
    packs = read_compile_manifest(out).packs
    assert sorted(p.artifacts.status for p in packs.values()) == ["compiled", "pending"]
    monkeypatch.delenv("HAILO_DOUBLE_INTERRUPT_AFTER")
    assert worker.main(command.split()[3:]) == 0
    compiles = [line for line in calls.read_text().splitlines() if '"call": "compile"' in line]
    assert _parsed(calls) == [] and len(compiles) == 1  # every stage HAR reused; only the second pack compiled
    assert [len(f.stages) for f in hef_files(out, list(read_compile_manifest(out).stages))] == [8, 7]
    assert "17 of 17 job(s) done (16 reused)" in capsys.readouterr().out


def test_worker_pending_without_jobs_is_one_line(tmp_path, capsys):
    assert worker.main(["--pending", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no pending.json" in err and len(err.splitlines()) == 1


def test_no_calibration_array_or_big_file_lands_in_the_export(tmp_path, monkeypatch, capsys):
    from convtasnet_hailo.assets import DEMO_MIXTURE

    sdk_double.install(monkeypatch)
    export = _export(tmp_path, "--networks-per-group", "8")
    calib = tmp_path / "build" / "calib"
    hef_dir = tmp_path / "build" / "hailo"
    args = ["--calib", str(DEMO_MIXTURE), "--calib-count", "8"]
    assert main(["compile", "--export-dir", str(export), *args, "--dry-run"]) == 0
    assert main(["compile", "--export-dir", str(export), *args]) == 0
    assert (
        main(["compile", "--export-dir", str(export), *args, "--calib-dir", str(calib), "--hef-dir", str(hef_dir)]) == 0
    )
    assert not [p for p in export.rglob("*") if p.suffix == ".npy" or (p.is_file() and p.stat().st_size > LIMIT)]
    assert list((tmp_path / "export.calib").glob("*.npy")) and list(calib.glob("*.npy"))
    assert [len(f.stages) for f in hef_files(hef_dir, list(read_compile_manifest(hef_dir).stages))] == [8, 7]
    capsys.readouterr()
    inside = export / "calib"
    assert main(["compile", "--export-dir", str(export), "--calib-dir", str(inside), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lies inside the export" in err and len(err.splitlines()) == 1 and not inside.exists()


def _model_scripts(folder, out, record: dict) -> None:
    """A `noise`-shaped folder: an (empty) .alls per stage and the report beside it."""
    scripts = folder / "model_scripts"
    scripts.mkdir(parents=True)
    stages = list(read_compile_manifest(out).stages)
    for stage in stages:
        (scripts / f"{stage}.alls").write_text("")
    (folder / "noise_report.json").write_text(json.dumps(record | {"model_scripts": {s: "" for s in stages}}))


def test_precision_advice_for_another_model_or_tile_width_is_refused(tmp_path, monkeypatch, capsys, tiny_checkpoint):
    from convtasnet_hailo.files import sha256_file

    sdk_double.install(monkeypatch)
    export = tmp_path / "export"
    assert main(["export", "--model", str(tiny_checkpoint), "--tile-w", "16", "--out", str(export)]) == 0
    out = export / "hailo" / "hailo8"
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4", "--dry-run"]) == 0
    sha = sha256_file(tiny_checkpoint)
    cases = {
        "other": ({"model_sha256": "0" * 64, "model_source": "other.pth", "tile_w": 16}, 2, "for other.pth"),
        "tile": ({"model_sha256": sha, "model_source": "tiny.pth", "tile_w": 256}, 2, "at tile width 256"),
        "same": ({"model_sha256": sha, "model_source": "tiny.pth", "tile_w": 16}, 0, ""),
        # made for this model, but calibrated on other audio than this compile's: said, not refused
        "audio": (
            {"model_sha256": sha, "tile_w": 16, "calibration_set": {"files": [str(tmp_path / "other.wav")]}},
            0,
            "come from different audio",
        ),
    }
    for name, (record, code, said) in cases.items():
        _model_scripts(tmp_path / name, out, record)
        capsys.readouterr()
        precision = str(tmp_path / name / "model_scripts")
        assert main(["compile", "--export-dir", str(export), "--precision", precision, "--dry-run"]) == code
        err = capsys.readouterr().err
        assert said in err and (code == 0 or len(err.splitlines()) == 1)


def test_calibration_audio_below_the_model_rate_is_named(tmp_path, monkeypatch, caplog):
    import dataclasses

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    checkpoint = tmp_path / "tiny16k.pth"
    save_model(random_model(dataclasses.replace(TINY, sample_rate=16000), seed=5), checkpoint)
    export = tmp_path / "export"
    assert main(["export", "--model", str(checkpoint), "--tile-w", "16", "--out", str(export)]) == 0
    audio = tmp_path / "low.wav"
    _noise_wav(audio, rate=8000)
    with caplog.at_level("WARNING"):
        code = main(["compile", "--export-dir", str(export), "--calib", str(audio), "--calib-count", "4", "--dry-run"])
    assert code == 0
    assert any("8000 Hz" in r.message and "16000 Hz" in r.message for r in caplog.records)


def test_a_pending_run_that_dies_abruptly_resumes_where_it_stopped(tmp_path, monkeypatch):
    """The worker process dies mid-compile (the double's ``crash``: ``os._exit``, no cleanup, as a
    SIGKILL leaves it); the same command again compiles only the stages it had not finished."""
    import subprocess
    import sys

    export = _export(tmp_path)
    out = export / "hailo" / "hailo8"
    assert main(["compile", "--export-dir", str(export), "--dry-run", "--calib-count", "4"]) == 0
    calls = tmp_path / "calls.jsonl"
    sdk_double.install(monkeypatch, behavior={_net(out, "tcn2_depth"): "crash"}, calls=calls)
    command = [sys.executable, "-m", "convtasnet_hailo.dfc.worker", "--pending", str(out)]
    died = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert died.returncode == 3
    first = _parsed(calls)
    assert first[-1] == _net(out, "tcn2_depth") and len(first) < STAGES
    monkeypatch.setenv("HAILO_DOUBLE_BEHAVIOR", "{}")
    assert subprocess.run(command, capture_output=True, text=True, timeout=300).returncode == 0
    again = _parsed(calls)
    assert again[0] == first[-1] and len(again) == STAGES - len(first) + 1
    assert not set(again) & set(first[:-1])


def test_pending_jobs_without_their_calibration_folder_are_one_line(tmp_path, monkeypatch, capsys):
    export = _export(tmp_path)
    assert main(["compile", "--export-dir", str(export), "--dry-run", "--calib-count", "4"]) == 0
    (tmp_path / "export.calib").rename(tmp_path / "elsewhere")  # the export copied without it
    sdk_double.install(monkeypatch)
    capsys.readouterr()
    assert worker.main(["--pending", str(export / "hailo" / "hailo8")]) == 2
    err = capsys.readouterr().err
    assert "export.calib" in err and "is missing" in err and len(err.splitlines()) == 1
