"""The device bundle (runtime/bundle.py): assembled from an export and its compile, read back with
every check, refused in one line when tampered with (a changed file, a path out, a symlink out, a
number out of range, a pickle), archived without absolute or .. names."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.runtime.bundle import (
    BUNDLE_FILE,
    MAX_FILE_BYTES,
    BundleSettings,
    assemble_bundle,
    read_bundle,
    write_bundle_archive,
)
from tests.conftest import TINY, compile_with_sdk_double

SETTINGS = BundleSettings(hw_arch="hailo8", link="gen3")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An export of the tiny model compiled with the SDK double (one HEF per stage), and its bundle."""
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model

    root = tmp_path_factory.mktemp("bundle")
    checkpoint = root / "tiny.pth"
    save_model(random_model(TINY, seed=11), checkpoint)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, export, hefs = compile_with_sdk_double(root, monkeypatch, checkpoint)
    bundle = assemble_bundle(export, hefs, SETTINGS, root / "device")
    return export, hefs, bundle


@pytest.fixture
def copy(made, tmp_path):
    """A fresh copy of the bundle to tamper with."""
    target = tmp_path / "device"
    shutil.copytree(made[2].directory, target)
    return target


def _refused(folder: Path, *needles: str) -> str:
    with pytest.raises(UserError) as caught:
        read_bundle(folder)
    message = str(caught.value)
    assert "\n" not in message and all(n in message for n in needles), message
    return message


def _edit(folder: Path, change) -> None:
    path = folder / BUNDLE_FILE
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_bundle_holds_only_what_the_device_reads(made):
    export, hefs, bundle = made
    names = set(bundle.files)
    assert {"manifest.json", "device_plan.json", "device_plan.npz", "hailo/hailo8/compile_manifest.json"} <= names
    assert any(n.endswith(".onnx") for n in names) and bundle.has_hefs
    assert not [n for n in names if n.endswith((".npy", ".har", ".log"))]
    on_disk = sorted(p.relative_to(bundle.directory).as_posix() for p in bundle.directory.rglob("*") if p.is_file())
    assert on_disk == sorted([*names, BUNDLE_FILE])
    assert bundle.tile_w == 16 and bundle.job == "separate" and bundle.hw_arch == "hailo8" and bundle.link == "gen3"
    assert bundle.model.n_src == TINY.n_src and bundle.model.sample_rate == TINY.sample_rate
    assert bundle.model.name == "tiny" and len(bundle.model.sha256) == 64
    assert bundle.hailort.dfc.startswith("3.33.1") and bundle.hailort.major_minor == "4.23"
    assert bundle.hef_dir == bundle.directory / "hailo" / "hailo8" and bundle.export_dir == bundle.directory
    assert read_bundle(bundle.directory) == bundle


def test_reading_a_bundle_needs_no_torch(made):
    script = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnx'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, B())\n"
        "from convtasnet_hailo.runtime.bundle import read_bundle\n"
        f"print(read_bundle({str(made[2].directory)!r}).tile_w)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "16", result.stderr[-1500:]


def test_a_changed_file_is_refused(copy):
    stage = next(p for p in copy.glob("*.onnx"))
    stage.write_bytes(stage.read_bytes() + b"\0")
    _refused(copy, str(copy / BUNDLE_FILE), stage.name, "changed after the bundle was made", "copy the bundle again")


def test_a_path_out_of_the_bundle_is_refused(copy, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    _edit(copy, lambda r: r["files"].update({"../secret.json": "0" * 64}))
    _refused(copy, "../secret.json", "outside")
    _edit(copy, lambda r: (r["files"].pop("../secret.json"), r["files"].update({str(outside): "0" * 64})))
    _refused(copy, "secret.json")


def test_a_symlink_out_of_the_bundle_is_refused(copy, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    stage = next(p for p in copy.glob("*.onnx"))
    shutil.copyfile(stage, outside)
    stage.unlink()
    os.symlink(outside, stage)
    _refused(copy, stage.name, "symlink out")


def test_an_unlisted_file_is_refused(copy):
    (copy / "notes.json").write_text("{}")
    _refused(copy, "notes.json", "not listed")


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("tile_w", 10**30, "outside"),
        ("tile_w", True, "not an integer"),
        ("hop_ms", 1e308, "outside"),
        ("hw_arch", "hailo99", "not one of"),
        ("link", "gen9", "not one of"),
        ("format_version", 2, "format_version"),
        ("format", "something-else", "format"),
        ("job", "stream", "without a hop_ms"),
    ],
)
def test_fields_out_of_range_are_refused(copy, key, value, needle):
    _edit(copy, lambda r: r.update({key: value}))
    _refused(copy, str(copy / BUNDLE_FILE), needle)


def test_a_huge_sample_rate_and_a_disagreeing_tile_are_refused(copy):
    _edit(copy, lambda r: r["model"].update({"sample_rate": 10**12}))
    _refused(copy, "model.sample_rate", "outside")
    _edit(copy, lambda r: (r["model"].update({"sample_rate": TINY.sample_rate}), r.update({"tile_w": 32})))
    _refused(copy, "tile_w is 32", "manifest.json")


def test_a_pickle_looking_file_is_refused(copy):
    import hashlib
    import pickle

    payload = pickle.dumps({"a": 1}, protocol=4)
    for name, needle in (("model.pkl", "only .json, .npz, .onnx, .hef"), ("device_plan.npz", "pickle")):
        (copy / name).write_bytes(payload)
        digest = hashlib.sha256(payload).hexdigest()
        _edit(copy, lambda r, n=name, d=digest: r["files"].update({n: d}))
        _refused(copy, name, needle)
        if name == "model.pkl":
            (copy / name).unlink()
            _edit(copy, lambda r, n=name: r["files"].pop(n))


def test_not_a_bundle_says_what_to_pass(tmp_path, made):
    with pytest.raises(UserError, match="pass the device/ folder"):
        read_bundle(tmp_path)
    archive = write_bundle_archive(made[2].directory, tmp_path / "device.tar.gz")
    with pytest.raises(UserError, match="extract it first"):
        read_bundle(archive)


def test_the_archive_has_only_relative_names_and_reads_back(made, tmp_path):
    archive = write_bundle_archive(made[2].directory, tmp_path / "device.tar.gz")
    with tarfile.open(archive) as handle:
        names = handle.getnames()
        assert all(n.startswith("device/") and ".." not in n.split("/") and not n.startswith("/") for n in names)
        assert all(m.isfile() for m in handle.getmembers())
        handle.extractall(tmp_path / "unpacked", filter="data")
    assert read_bundle(tmp_path / "unpacked" / "device").files == made[2].files


def test_assembling_refuses_arrays_har_logs_and_big_files(made, tmp_path, monkeypatch):
    export, hefs, _ = made
    work = tmp_path / "export"
    shutil.copytree(export, work)
    manifest = json.loads((work / "manifest.json").read_text())
    stage = manifest["stages"][0]
    (work / "calib.npy").write_bytes((work / stage["file"]).read_bytes())
    stage["file"] = "calib.npy"
    (work / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"calib\.npy is a \.npy file; a device bundle holds only"):
        assemble_bundle(work, None, SETTINGS, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr("convtasnet_hailo.runtime.bundle.MAX_FILE_BYTES", 1000)
    with pytest.raises(UserError, match="over the bundle's 0 MB per file"):
        assemble_bundle(export, hefs, SETTINGS, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert MAX_FILE_BYTES == 50 * 2**20


def test_assembling_checks_the_arch_and_replaces_only_a_bundle(made, tmp_path):
    export, hefs, _ = made
    with pytest.raises(UserError, match="holds hailo8 HEFs, not hailo8l"):
        assemble_bundle(export, hefs, BundleSettings(hw_arch="hailo8l", link="gen3"), tmp_path / "b")
    other = tmp_path / "taken"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="holds files and no bundle.json"):
        assemble_bundle(export, hefs, SETTINGS, other)
    assert (other / "keep.txt").read_text() == "mine"
    first = assemble_bundle(export, None, SETTINGS, tmp_path / "b")
    assert not first.has_hefs and first.hailort is None
    again = assemble_bundle(export, hefs, SETTINGS, tmp_path / "b")
    assert again.has_hefs


def test_stream_settings_are_recorded_and_checked(made, tmp_path):
    export, hefs, _ = made
    with pytest.raises(UserError, match="without a hop_ms"):
        assemble_bundle(export, hefs, BundleSettings("hailo8", "gen2", job="stream"), tmp_path / "s")
    bundle = assemble_bundle(
        export, hefs, BundleSettings("hailo8", "gen2", job="stream", hop_ms=2.0, stream_plan="per-hop"), tmp_path / "s"
    )
    assert (bundle.job, bundle.hop_ms, bundle.stream_plan, bundle.tile_w) == ("stream", 2.0, "per-hop", None)
