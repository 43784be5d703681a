"""``--bundle`` on the command line: every setting from the bundle, a disagreeing one refused in
one line, the backend said in one line; and the issue-37 done-when case: an Asteroid-written
three-source 8 kHz checkpoint exported and compiled (SDK double), bundled, then separated from the
bundle on the HailoRT double in a process where torch cannot be imported, equal to the float model."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from convtasnet_hailo.cli import main
from convtasnet_hailo.model.checkpoint import load_model
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.bundle import BundleSettings, assemble_bundle
from tests.conftest import TINY, assert_within_contract, compile_with_sdk_double, speech_like
from tests.model.test_checkpoint import asteroid_package

NO_TORCH = Path(__file__).with_name("no_torch.py")
THREE = dataclasses.replace(TINY, n_src=3, sample_rate=8000)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The three-source checkpoint as Asteroid writes it, its export and compile, and its bundle."""
    root = tmp_path_factory.mktemp("three")
    checkpoint = root / "asteroid_3src.pth"
    torch.save(asteroid_package(random_model(THREE, seed=5)), checkpoint)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, export, hefs = compile_with_sdk_double(root, monkeypatch, checkpoint)
    bundle = assemble_bundle(export, hefs, BundleSettings(hw_arch="hailo8", link="gen3"), root / "B" / "device")
    mix = root / "mix.wav"
    soundfile.write(mix, speech_like(1.1, 8000, 2), 8000, subtype="FLOAT")
    return checkpoint, bundle, mix


def _no_torch(args: list[str], with_hailort: bool) -> subprocess.CompletedProcess:
    from tests.doubles import runtime as runtime_double

    paths = [str(runtime_double.DOUBLE_ROOT)] if with_hailort else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
        "HAILO_DOUBLE_DEVICES": json.dumps(["0000:01:00.0"]),
        "HAILO_DOUBLE_ARCH": "hailo8",
        "HAILO_DOUBLE_IO": "float32",
    }
    return subprocess.run([sys.executable, str(NO_TORCH), *args], capture_output=True, text=True, timeout=300, env=env)


def _float_sources(checkpoint: Path, mix: Path) -> np.ndarray:
    model = load_model(str(checkpoint))[0].eval()
    wav = soundfile.read(mix, dtype="float32")[0]
    with torch.no_grad():
        return model(torch.from_numpy(wav)[None])[0].numpy()


def _written(folder: Path, n: int) -> np.ndarray:
    return np.stack([soundfile.read(folder / f"mix_s{i}.wav", dtype="float32")[0] for i in range(1, n + 1)])


def test_separate_from_a_bundle_on_hailort_without_torch_equals_the_float_model(made, tmp_path):
    checkpoint, bundle, mix = made
    out = tmp_path / "out"
    args = ["separate", str(mix), "--bundle", str(bundle.directory), "--backend", "hailo_runtime"]
    result = _no_torch([*args, "--out", str(out), "--subtype", "FLOAT"], with_hailort=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backend hailo_runtime (as asked)" in result.stderr
    assert not list(bundle.directory.rglob("*.npy")) and not list(bundle.directory.rglob("*.har"))
    assert not list(bundle.directory.rglob("*.log"))
    assert_within_contract(_written(out, 3), _float_sources(checkpoint, mix), "separate --bundle on hailo_runtime")
    record = json.loads((out / "separate_run.json").read_text())
    assert record["backend"] == "hailo_runtime" and record["tile_w"] == 16


def test_the_backend_is_chosen_and_said_in_one_line(made, tmp_path):
    checkpoint, bundle, mix = made
    args = ["separate", str(mix), "--bundle", str(bundle.directory), "--subtype", "FLOAT"]
    with_rt = _no_torch([*args, "--out", str(tmp_path / "a")], with_hailort=True)
    assert with_rt.returncode == 0, with_rt.stderr[-2000:]
    assert "backend hailo_runtime: the bundle's hailo8 HEFs on HailoRT 4.23" in with_rt.stderr
    without = _no_torch([*args, "--out", str(tmp_path / "b")], with_hailort=False)
    assert without.returncode == 0, without.stderr[-2000:]
    assert "backend onnxruntime (the CPU fallback): HailoRT (hailo_platform) does not import here" in without.stderr
    assert_within_contract(_written(tmp_path / "b", 3), _float_sources(checkpoint, mix), "separate --bundle on ORT")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--tile-w", "128"], "--tile-w 128 disagrees with the bundle"),
        (["--tile-w", "32"], "made for tile_w 16: drop --tile-w"),
        (["--no-fuse"], "--no-fuse disagrees with the bundle"),
        (["--block-chan", "8"], "--block-chan 8 disagrees"),
        (["--model", "x.pth"], "drop --model"),
        (["--export-dir", "E"], "drop --export-dir"),
        (["--backend", "torch_proxy"], "not --backend torch_proxy"),
    ],
)
def test_a_setting_that_disagrees_with_the_bundle_is_refused(made, tmp_path, capsys, extra, needle):
    _, bundle, mix = made
    code = main(["separate", str(mix), "--bundle", str(bundle.directory), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_the_same_setting_given_is_accepted(made, tmp_path):
    _, bundle, mix = made
    code = main(
        ["separate", str(mix), "--bundle", str(bundle.directory), "--tile-w", "16", "--out", str(tmp_path / "o")]
    )
    assert code == 0


def test_a_stream_hop_other_than_the_bundles_is_refused(made, tmp_path, capsys):
    _, bundle, mix = made
    code = main(["stream", str(mix), "--bundle", str(bundle.directory), "--hop-ms", "8", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--hop-ms 8 disagrees with the bundle" in err and "hop_ms 16" in err, err


def test_an_export_dir_tile_other_than_the_exports_is_refused(made, tmp_path, capsys):
    """Issue 39: the same refusal for --export-dir (no silent replacement by the export's width)."""
    _, bundle, mix = made
    export = tmp_path / "export"
    shutil.copytree(bundle.directory, export)
    (export / "bundle.json").unlink()
    shutil.rmtree(export / "hailo")
    args = ["separate", str(mix), "--export-dir", str(export), "--backend", "onnxruntime"]
    assert main([*args, "--tile-w", "64", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--tile-w 64 disagrees with the export {export}, made for tile_w 16" in err, err
    assert main([*args, "--out", str(tmp_path / "o2")]) == 0


def _sysfs(root: Path, speed: str) -> Path:
    device = root / "0000:01:00.0"
    device.mkdir(parents=True, exist_ok=True)
    (device / "current_link_speed").write_text(f"{speed} GT/s PCIe\n")
    return root


@pytest.mark.parametrize(
    "hailort, speed, code, needles",
    [
        ("4.23.0", "8.0", 0, ["[ok] HailoRT: DFC 3.33.1", "[ok] PCIe link: device 0000:01:00.0 links at gen3"]),
        ("4.23.0", "5.0", 1, ["[problem] PCIe link: device 0000:01:00.0 links at gen2", "dtparam=pciex1_gen=3"]),
        ("4.18.0", "8.0", 1, ["[problem] HailoRT: HEFs of DFC 3.33.1", "newer than HailoRT 4.18.0", "fix: install"]),
    ],
)
def test_doctor_checks_hailort_chip_and_link_against_the_bundle(
    made, tmp_path, monkeypatch, capsys, hailort, speed, code, needles
):
    from convtasnet_hailo.commands import doctor_bundle
    from tests.doubles import runtime as runtime_double

    runtime_double.install(monkeypatch, hailort=hailort)
    monkeypatch.setattr(doctor_bundle, "PCI_DEVICES", _sysfs(tmp_path / "pci", speed))
    assert main(["doctor", "--bundle", str(made[1].directory)]) == code
    out = capsys.readouterr().out
    assert "[ok] bundle: " in out and "every sha256 checked" in out
    assert "[ok] chip: unconfirmed: device 0000:01:00.0 found" in out  # the double has no control API
    assert all(n in out for n in needles), out


def test_doctor_names_a_tampered_bundle_and_a_missing_hailort(made, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "device"
    shutil.copytree(made[1].directory, copy)
    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # HailoRT not installed
    assert main(["doctor", "--bundle", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "[problem] HailoRT: hailo_platform does not import; the HEFs need HailoRT 4.23 or newer" in out
    assert "[problem] chip: no Hailo device found" in out
    next(copy.glob("*.onnx")).write_bytes(b"changed")
    assert main(["doctor", "--bundle", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "[problem] bundle: " in out and "changed after the bundle was made" in out and "fix: copy the bundle" in out


def test_parity_from_a_bundle_prints_the_deciding_sqnr_and_the_output_si_snr(made, tmp_path, monkeypatch, capsys):
    """Quantized parity (hailo_runtime, judged by SQNR per stage) says which SQNR decided each case
    and the output's SI-SNR against float, not a normwise margin."""
    from tests.doubles import runtime as runtime_double

    checkpoint, bundle, _ = made
    runtime_double.install(monkeypatch)
    args = ["parity", "full-chain", "--bundle", str(bundle.directory), "--model", str(checkpoint)]
    assert main([*args, "--length", "300", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "backend hailo_runtime: the bundle's hailo8 HEFs on HailoRT 4.23" in captured.err
    case = next(line for line in captured.err.splitlines() if line.startswith("[1/1]"))
    assert "SQNR" in case and "(the lowest stage; >= " in case and "output SI-SNR vs float" in case, case
    assert "margin" not in case
    assert "lowest SQNR" in captured.out and "output SI-SNR vs float" in captured.out, captured.out
    record = json.loads(next(tmp_path.glob("*/*full*.json")).read_text())
    assert record["tile_w"] == 16 and record["deciding_sqnr_stage"] and record["deciding_sqnr_db"] > 20


def test_parity_refuses_a_checkpoint_other_than_the_bundles(made, tmp_path, capsys):
    _, bundle, _ = made
    other = tmp_path / "other.pth"
    torch.save(asteroid_package(random_model(THREE, seed=6)), other)
    args = ["parity", "full-chain", "--bundle", str(bundle.directory), "--model", str(other), "--out", str(tmp_path)]
    assert main([*args, "--backend", "onnxruntime"]) == 2
    assert "is not the checkpoint the export" in capsys.readouterr().err


def test_the_api_opens_a_bundle_the_same_way(made, monkeypatch, caplog):
    import logging

    from convtasnet_hailo import Separator, StreamingSeparator
    from convtasnet_hailo.errors import UserError
    from tests.doubles import runtime as runtime_double

    checkpoint, bundle, mix = made
    wav = soundfile.read(mix, dtype="float32")[0]
    expected = _float_sources(checkpoint, mix)
    with Separator.from_bundle(bundle.directory, backend="onnxruntime") as separator:
        assert separator.n_src == 3 and separator.plan.options.fuse
        assert_within_contract(separator.separate(wav, 8000), expected, "Separator.from_bundle on onnxruntime")
    runtime_double.install(monkeypatch)
    with caplog.at_level(logging.INFO, logger="convtasnet_hailo"):
        with Separator.from_bundle(bundle.directory) as separator:
            assert_within_contract(separator.separate(wav, 8000), expected, "Separator.from_bundle on hailo_runtime")
    assert "backend hailo_runtime: the bundle's hailo8 HEFs" in caplog.text
    with pytest.raises(UserError, match="not --backend torch_proxy"):
        Separator.from_bundle(bundle.directory, backend="torch_proxy")
    with pytest.raises(UserError, match="hop_ms=8 disagrees with the bundle .*, made for hop_ms 16"):
        StreamingSeparator.from_bundle(bundle.directory, hop_ms=8, backend="onnxruntime")
    with pytest.raises(UserError, match="not causal"):
        StreamingSeparator.from_bundle(bundle.directory, backend="onnxruntime")


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    """A causal (cLN) checkpoint, its per-hop export (tile 16: 16 ms hops) compiled, bundled for streaming."""
    from convtasnet_hailo.model.config import NormType

    root = tmp_path_factory.mktemp("causal")
    checkpoint = root / "causal.pth"
    config = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)
    torch.save(asteroid_package(random_model(config, seed=7)), checkpoint)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, export, hefs = compile_with_sdk_double(root, monkeypatch, checkpoint)
    settings = BundleSettings(hw_arch="hailo8", link="gen3", job="stream", hop_ms=16.0, stream_plan="per-hop")
    return checkpoint, assemble_bundle(export, hefs, settings, root / "device")


def test_stream_from_a_bundle_on_hailort_without_torch_equals_the_torch_path(causal, made, tmp_path):
    checkpoint, bundle = causal
    mix = made[2]
    args = ["stream", str(mix), "--bundle", str(bundle.directory), "--subtype", "FLOAT", "--out", str(tmp_path / "d")]
    result = _no_torch(args, with_hailort=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backend hailo_runtime: the bundle's hailo8 HEFs" in result.stderr
    torch_args = ["--model", str(checkpoint), "--plan", "per-hop", "--hop-ms", "16", "--subtype", "FLOAT"]
    assert main(["stream", str(mix), *torch_args, "--out", str(tmp_path / "t")]) == 0
    device, reference = _written(tmp_path / "d", 2), _written(tmp_path / "t", 2)
    assert_within_contract(device, reference, "stream --bundle on hailo_runtime")
    assert json.loads((tmp_path / "d" / "stream_run.json").read_text())["backend"] == "hailo_runtime"


def test_the_api_page_snippet_runs_as_written(causal, made, tmp_path, monkeypatch):
    """docs/api.md's snippet, on a causal model's bundle copied to ./device: a last partial hop, finish()."""
    import re

    code = re.search(r"```python\n(.*?)```", (Path(__file__).parents[2] / "docs" / "api.md").read_text(), re.S)
    shutil.copytree(causal[1].directory, tmp_path / "device")
    shutil.copy(made[2], tmp_path / "mix.wav")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code.group(1), "docs/api.md", "exec"), scope)
    assert scope["sources"].shape == (2, len(scope["wav"]))
    assert len(scope["wav"]) % scope["streamer"].hop  # the snippet's last hop is a partial one
    assert np.concatenate(scope["pieces"], axis=-1).shape == (2, len(scope["wav"]))


def test_stream_predicts_for_the_bundles_chip_and_link(causal, made, tmp_path, capsys):
    """The cost model's --device and --link come from the bundle (hailo8 over gen3 here); a --link
    the user gives that differs is refused like any other setting."""
    bundle, mix = causal[1], made[2]
    args = ["stream", str(mix), "--bundle", str(bundle.directory), "--backend", "onnxruntime"]
    assert main([*args, "--link", "gen2", "--out", str(tmp_path / "a")]) == 2
    assert "--link gen2 disagrees with the bundle" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    record = json.loads((tmp_path / "b" / "stream_run.json").read_text())
    assert (record["device_prediction"]["device"], record["device_prediction"]["link"]) == ("hailo8", "gen3")


def test_stream_live_from_a_bundle_equals_the_offline_model(causal, made, tmp_path, monkeypatch):
    """stream --live --bundle on the sounddevice and HailoRT doubles: the bundle's hop and plan."""
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sound as sound_double

    checkpoint, bundle = causal
    sound_double.install(monkeypatch, made[2])
    runtime_double.install(monkeypatch)
    out = tmp_path / "live"
    assert main(["stream", "--live", "0.6", "--bundle", str(bundle.directory), "--out", str(out)]) == 0
    record = json.loads((out / "stream_run.json").read_text())
    assert record["backend"] == "hailo_runtime" and record["live"]["interrupted"] is False
    captured = soundfile.read(out / "live_input.wav", dtype="float32")[0]
    written = np.stack([soundfile.read(out / f"live_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    model = load_model(str(checkpoint))[0].eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(captured)[None])[0].numpy()
    assert_within_contract(written, expected, "stream --live --bundle vs the offline model")
