"""guard.py (what a command reads is never what it writes) and records.py (files earlier runs
wrote, read as untrusted input), on their own."""

from __future__ import annotations

import os

import pytest

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.files import write_text_atomically
from convtasnet_hailo.guard import check_run_files, regular_file, session
from convtasnet_hailo.records import RecordError, field, inside, items


def test_an_output_that_is_an_input_by_name_symlink_or_hard_link_is_refused(tmp_path):
    given = tmp_path / "in.wav"
    given.write_bytes(b"mine")
    (tmp_path / "sym.wav").symlink_to(given)
    os.link(given, tmp_path / "hard.wav")
    for output in (given, tmp_path / "sym.wav", tmp_path / "hard.wav", tmp_path / "sub" / ".." / "in.wav"):
        with pytest.raises(UserError, match="would overwrite the input .*in.wav"):
            check_run_files([("the input", given)], [output])
    check_run_files([("the input", given)], [tmp_path / "other.wav", None])  # different files pass
    assert given.read_bytes() == b"mine"


def test_a_folder_read_protects_the_files_directly_in_it(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text("{}")
    with pytest.raises(UserError, match="a file of --export-dir"):
        check_run_files([("--export-dir", tmp_path / "export")], [tmp_path / "export" / "manifest.json"])
    check_run_files([("--export-dir", tmp_path / "export")], [tmp_path / "export" / "hailo" / "summary.tsv"])


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    with pytest.raises(UserError, match="are one file"):
        check_run_files([], [tmp_path / "a.json", tmp_path / "." / "a.json"])


def test_inside_a_session_every_atomic_write_refuses_an_input(tmp_path):
    given = tmp_path / "stage.onnx"
    given.write_bytes(b"graph")
    with session():
        check_run_files([("the input", given)], [])
        with pytest.raises(UserError, match="would overwrite the input"):
            write_text_atomically(given, "replaced")
        write_text_atomically(tmp_path / "fine.txt", "written")
    assert given.read_bytes() == b"graph" and (tmp_path / "fine.txt").read_text() == "written"
    write_text_atomically(given, "after the session")  # a later command may write it
    assert not list(tmp_path.glob(".*.partial"))


def test_regular_file_says_what_a_path_is_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "dir").mkdir()
    cases = {
        tmp_path / "pipe": "is a FIFO",
        tmp_path / "dir": "is a folder",
        tmp_path / "none": "does not exist",
        "/dev/null": "is a device",
    }
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            regular_file(path, "audio file", "pass a WAV")
    (tmp_path / "ok").write_text("x")
    assert regular_file(tmp_path / "ok", "audio file", "pass a WAV") == tmp_path / "ok"


def test_inside_keeps_names_in_their_folder(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "outside.onnx").write_text("x")
    (tmp_path / "export" / "link.onnx").symlink_to(tmp_path / "outside.onnx")
    (tmp_path / "export" / "sub").mkdir()
    assert inside(tmp_path / "export", "sub/a.onnx", "file") == tmp_path / "export" / "sub" / "a.onnx"
    for name, message in (
        ("/etc/passwd", "points outside"),
        ("../outside.onnx", "points outside"),
        ("sub/../../outside.onnx", "points outside"),
        ("link.onnx", "is a symlink out of"),
        (3, "is not a file name"),
        ("", "is not a file name"),
    ):
        with pytest.raises(RecordError, match=message):
            inside(tmp_path / "export", name, "file")


def test_field_checks_types_and_finiteness():
    record = {"n": 3, "x": 1.5, "flag": True, "bad": float("nan"), "names": ["a", 2]}
    assert field(record, "n", int, "r") == 3 and field(record, "x", float, "r") == 1.5
    assert field(record, "n", float, "r") == 3 and field(record, "missing", int, "r", None) is None
    for key, kind, message in (
        ("flag", int, "not an integer"),
        ("bad", float, "not a number"),
        ("missing", int, "lacks 'missing'"),
        ("x", str, "not a string"),
    ):
        with pytest.raises(RecordError, match=message):
            field(record, key, kind, "r")
    with pytest.raises(RecordError, match=r"r\[1\] is 2"):
        items(record["names"], str, "r")
    with pytest.raises(RecordError, match="is a list, not an object"):
        field([], "n", int, "r")


def test_manifest_reads_plan_paths_from_the_plan_itself():
    """No literal copy of the plan paths to drift: the manifest's plan record is the plan's
    (``plan.options``, importable without torch)."""
    from convtasnet_hailo.plan.options import PlanPath, PlanRecord

    for path in PlanPath:
        assert PlanRecord.from_json({"path": path.value, "tile_w": 8}).path.outputs == path.outputs


def test_a_folder_in_use_by_another_process_is_refused_and_a_stale_lock_taken_over(tmp_path, tiny_checkpoint, capsys):
    """Two runs into one --out: the second is refused in one line while the first lives; once the
    first is gone (killed, its lock left behind), the lock is stale and the next run takes it."""
    import subprocess
    import sys

    import soundfile

    from convtasnet_hailo.cli import main
    from convtasnet_hailo.guard import LOCK_NAME
    from tests.conftest import speech_like

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from convtasnet_hailo.guard import session, lock_folder\n"
            "with session():\n    lock_folder(sys.argv[1], 'separate'); print('locked', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        soundfile.write(tmp_path / "mix.wav", speech_like(0.3, 8000, 1), 8000)
        argv = ["separate", str(tmp_path / "mix.wav"), "--model", str(tiny_checkpoint), "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by another convtasnet-hailo run (pid {holder.pid}" in err, err
        assert not list(out.glob("*.wav"))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (out / LOCK_NAME).is_file()  # killed: left behind, and stale now
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["mix_s1.wav", "mix_s2.wav"]
    assert not (out / LOCK_NAME).exists()  # released when the run ended
