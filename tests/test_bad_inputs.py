"""The bad-input catalogue (docs/bad_inputs.md): every case a user can cause gets one line on
stderr naming the problem and the fix, a non-zero exit and no traceback; the inputs that are
accepted with a note say so. Each case builds its own files in tmp_path.

Regenerate the doc's table from the real messages with
``.venv/bin/python -m tests.test_bad_inputs > docs/bad_inputs_table.md`` (see the doc).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from convtasnet_hailo.cli import main
from tests.conftest import speech_like

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"


@dataclasses.dataclass(frozen=True)
class Case:
    """``argv`` may hold placeholders: {ckpt} (a tiny checkpoint), {mix} (a good 0.5 s mixture),
    {tmp} (the case's folder) and whatever ``setup`` returns."""

    id: str
    command: str
    argv: tuple[str, ...]
    message: str  # a fragment of the expected line
    exit: int = 2
    setup: Callable[[Path], dict] = lambda tmp: {}
    stream: str = "err"


def _wav(tmp: Path, name: str, data, rate: int = 8000, subtype: str | None = None) -> str:
    path = tmp / name
    sf.write(path, data, rate, subtype=subtype)
    return str(path)


def _nan(tmp):
    wav = speech_like(0.5, 8000, 1)
    wav[2000] = np.nan
    return {"bad": _wav(tmp, "nan.wav", wav, subtype="FLOAT")}


def _inf(tmp):
    wav = speech_like(0.5, 8000, 1)
    wav[100] = np.inf
    return {"bad": _wav(tmp, "inf.wav", wav, subtype="FLOAT")}


def _loud(tmp):
    return {"bad": _wav(tmp, "loud.wav", 40.0 * speech_like(0.5, 8000, 2), subtype="FLOAT")}


def _bytes(name: str, data: bytes):
    def setup(tmp):
        (tmp / name).write_bytes(data)
        return {"bad": str(tmp / name)}

    return setup


def _truncated_checkpoint(tmp):
    data = (tmp / "tiny.pth").read_bytes()
    (tmp / "truncated.pth").write_bytes(data[: len(data) // 2])
    return {"bad": str(tmp / "truncated.pth")}


def _package(edit: Callable[[dict], object]):
    def setup(tmp):
        package = torch.load(tmp / "tiny.pth", weights_only=True)
        package = edit(package) or package
        torch.save(package, tmp / "edited.pth")
        return {"bad": str(tmp / "edited.pth")}

    return setup


def _other_architecture(package):
    package["model_name"] = "DPRNNTasNet"


def _stft_filterbank(package):
    package["model_args"]["fb_name"] = "stft"


def _folder(tmp):
    (tmp / "folder.wav").mkdir()
    return {"bad": str(tmp / "folder.wav")}


def _file(tmp):
    (tmp / "a_file").write_text("x")
    return {"bad": str(tmp / "a_file")}


def _same_stem(tmp):
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    wav = speech_like(0.5, 8000, 3)
    return {"a": _wav(tmp, "a/mix.wav", wav), "b": _wav(tmp, "b/mix.wav", wav)}


def _format(name: str, rate: int, subtype: str):
    def setup(tmp):
        return {"bad": _wav(tmp, name, speech_like(0.5, rate, 4), rate, subtype)}

    return setup


def _metadata(kind: str):
    def setup(tmp):
        from tests.conftest import write_librimix_tree

        csv_path = write_librimix_tree(tmp / "tree", n=2)
        text = csv_path.read_text()
        if kind == "missing_paths":
            text = text.replace("/s1/", "/nowhere/")
        elif kind == "no_columns":
            text = "id,path\n1,x.wav\n"
        elif kind == "no_rows":
            text = text.splitlines()[0] + "\n"
        csv_path.write_text(text)
        return {"bad": str(csv_path)}

    return setup


def _short_source(tmp):
    return {"s1": _wav(tmp, "s1.wav", speech_like(0.2, 8000, 5)), "s2": _wav(tmp, "s2.wav", speech_like(0.5, 8000, 6))}


def _export(*extra: str, edit: Callable[[Path], None] | None = None):
    def setup(tmp):
        out = tmp / "export"
        assert main(["export", "--random-preset", "tiny", "--out", str(out), *extra]) in (0, 1)
        if edit:
            edit(out)
        return {"export": str(out)}

    return setup


def _no_manifest(out: Path):
    (out / "manifest.json").unlink()  # what an export interrupted before its manifest leaves


def _edited_stage(out: Path):
    stage = out / "tcn0_depth.onnx"
    stage.write_bytes(stage.read_bytes()[:-1] + b"\x00")


def _corrupt_manifest(out: Path):
    (out / "manifest.json").write_text("{not json")


def _not_a_grid(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "notes.txt").write_text("x")
    return {"run": str(tmp / "run")}


# The second round: nothing a user gave overwritten, nothing outside an export read, nothing
# non-finite passed, spreadsheets read as written, the machine's limits said up front.


def _copies(*names: str):
    """Good mixtures under ``names`` in the case folder (what a user's folder holds)."""

    def setup(tmp):
        return {Path(n).stem: _wav(tmp, n, speech_like(0.5, 8000, 20 + i)) for i, n in enumerate(names)}

    return setup


def _output_linked(kind: str):
    """``out/mix_s1.wav`` already there as a symlink (or hard link) to a file the run reads."""

    def setup(tmp):
        (tmp / "out").mkdir()
        target = tmp / ("mix.wav" if kind == "symlink" else "tiny.pth")
        link = tmp / "out" / "mix_s1.wav"
        link.symlink_to(target) if kind == "symlink" else os.link(target, link)
        return {}

    return setup


def _n_src_one(tmp):
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    save_model(random_model(dataclasses.replace(TINY, n_src=1), seed=3), tmp / "one.pth")
    return {"one": str(tmp / "one.pth"), **_copies("noisy.wav", "noisy_enhanced.wav")(tmp)}


def _causal(tmp):
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), tmp / "causal.pth")
    return {"causal": str(tmp / "causal.pth"), **_copies("mix_s1.wav", "mix_s2.wav")(tmp)}


def _checkpoint_named(name: str):
    def setup(tmp):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes((tmp / "tiny.pth").read_bytes())
        return {"named": str(tmp / name)}

    return setup


def _resume_over_metadata(tmp):
    from tests.conftest import write_librimix_tree

    csv_path = write_librimix_tree(tmp / "tree", n=1)
    (tmp / "run").mkdir()
    moved = tmp / "run" / "evaluate_per_utterance.csv"
    csv_path.rename(moved)
    return {"bad": str(moved), "run": str(tmp / "run")}


def _weights(edit: Callable[[dict], None]):
    """The tiny checkpoint with its state_dict edited."""

    def package_edit(package):
        package["state_dict"] = dict(package["state_dict"])
        edit(package["state_dict"])

    return _package(package_edit)


def _nan_weight(state):
    state["masker.TCN.0.shared_block.0.weight"] = state["masker.TCN.0.shared_block.0.weight"].clone()
    state["masker.TCN.0.shared_block.0.weight"][0, 0, 0] = float("nan")


def _inf_weight(state):
    state["decoder.filterbank._filters"] = state["decoder.filterbank._filters"].clone()
    state["decoder.filterbank._filters"][3, 0, 5] = float("inf")


def _overflowing_weights(state):
    for key, value in state.items():
        state[key] = value * 1e20  # finite in float32, their products are not


def _model_args(**changes):
    def edit(package):
        if "model_args" in changes and not isinstance(changes["model_args"], dict):
            package["model_args"] = changes["model_args"]
        else:
            package["model_args"] = {**package["model_args"], **changes}

    return _package(edit)


def _manifest_edit(edit: Callable[[Path, dict], None]):
    def on_export(out: Path):
        data = json.loads((out / "manifest.json").read_text())
        edit(out, data)
        (out / "manifest.json").write_text(json.dumps(data))

    return on_export


def _stage_outside(out: Path, data: dict):
    outside = out.parent / "outside"
    outside.mkdir()
    (outside / "x.onnx").write_bytes((out / "tcn0_depth.onnx").read_bytes())
    next(s for s in data["stages"] if s["name"] == "tcn0_depth")["file"] = "../outside/x.onnx"


def _stage_absolute(out: Path, data: dict):
    import hashlib

    entry = next(s for s in data["stages"] if s["name"] == "tcn0_depth")
    entry["file"], entry["sha256"] = "/etc/passwd", hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()


def _stage_symlink_out(out: Path, data: dict):
    outside = out.parent / "outside"
    outside.mkdir()
    (out / "tcn0_depth.onnx").rename(outside / "x.onnx")
    (out / "tcn0_depth.onnx").symlink_to(outside / "x.onnx")


def _no_stages(out: Path, data: dict):
    data["stages"] = []


def _stage_removed(out: Path, data: dict):
    data["stages"] = [s for s in data["stages"] if s["name"] != "tcn0_depth"]


def _stage_of_wrong_type(out: Path, data: dict):
    data["stages"][0]["inputs"][0]["shape"] = "1x1x2056"


def _noise_dir(text: str):
    def setup(tmp):
        (tmp / "noise").mkdir()
        (tmp / "noise" / "noise_report.json").write_text(text)
        return {"noise": str(tmp / "noise")}

    return setup


def _run_file(name: str, text: str):
    def setup(tmp):
        (tmp / "run").mkdir()
        (tmp / "run" / name).write_text(text)
        return {"run": str(tmp / "run")}

    return setup


def _csv(edit: Callable[[list[str]], object], encoding: str = "utf-8"):
    """The tiny LibriMix tree's CSV, its lines edited as a spreadsheet user would."""

    def setup(tmp):
        from tests.conftest import write_librimix_tree

        csv_path = write_librimix_tree(tmp / "tree", n=2)
        lines = csv_path.read_text().splitlines()
        lines = edit(lines) or lines
        csv_path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        return {"bad": str(csv_path)}

    return setup


def _spreadsheet(lines):
    """BOM, semicolons, padded cells, 4000.0 lengths, an extra column, paths relative to the CSV."""
    root = lines[1].split(",")[1].split("/Libri2Mix/")[0] + "/Libri2Mix/"
    rows = [line.replace(root, "../") for line in lines]
    rows = [";".join(f" {cell} " for cell in row.split(",")) + ";notes" for row in rows]
    rows[1:] = [row.replace(" 4000 ", "4000.0").replace(";notes", ";first take") for row in rows[1:]]
    return ["\ufeff" + rows[0]] + rows[1:]


def _fifo(name: str):
    """A FIFO, and a bounded wait for a reader: should a regression open it, the watcher opens the
    write end and closes it, so the reader meets end-of-file and the case fails instead of hanging."""

    def setup(tmp):
        os.mkfifo(tmp / name)
        threading.Thread(target=_unblock_readers, args=(tmp / name, 30.0), daemon=True).start()
        return {"fifo": str(tmp / name)}

    return setup


def _unblock_readers(fifo: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and fifo.exists():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only while a reader waits
            return
        except OSError:
            time.sleep(0.2)


def _corrupt_second_listed(tmp):
    """The second mixture a metadata CSV lists is not audio (found from its header, before work)."""
    second = sorted((tmp / "tree").rglob("mix_clean/*.wav"))[1]
    second.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    return {}


def _one_sample_after_a_good_file(tmp):
    return {"short": _wav(tmp, "short.wav", np.full(1, 0.5, np.float32))}


SEP = ("separate", "--model", "{ckpt}", "--out", "{tmp}/out")
CASES = [
    # separate: the audio
    Case(
        "nan_samples",
        "separate",
        ("{bad}",) + SEP[1:],
        "holds NaN/Inf samples, the first at 0.250 s (sample 2000)",
        setup=_nan,
    ),
    Case(
        "inf_samples",
        "separate",
        ("{bad}",) + SEP[1:],
        "holds NaN/Inf samples, the first at 0.013 s (sample 100)",
        setup=_inf,
    ),
    Case("missing_audio", "separate", ("{tmp}/nope.wav",) + SEP[1:], "does not exist"),
    Case("folder_as_audio", "separate", ("{bad}",) + SEP[1:], "is a folder; pass an audio file", setup=_folder),
    Case(
        "corrupt_audio",
        "separate",
        ("{bad}",) + SEP[1:],
        "as audio",
        setup=_bytes("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk"),
    ),
    Case(
        "empty_audio",
        "separate",
        ("{bad}",) + SEP[1:],
        "holds no samples",
        setup=lambda tmp: {"bad": _wav(tmp, "empty.wav", np.zeros(0, np.float32))},
    ),
    Case(
        "three_channels",
        "separate",
        ("{bad}",) + SEP[1:],
        "has 3 channels",
        setup=lambda tmp: {"bad": _wav(tmp, "3ch.wav", np.tile(speech_like(0.5, 8000, 1)[:, None], (1, 3)))},
    ),
    Case(
        "silent_audio",
        "separate",
        ("{bad}",) + SEP[1:],
        "is silent",
        setup=lambda tmp: {"bad": _wav(tmp, "silent.wav", np.zeros(4000, np.float32))},
    ),
    # separate: the model
    Case(
        "truncated_checkpoint",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "cannot read checkpoint",
        setup=_truncated_checkpoint,
    ),
    Case(
        "zero_byte_checkpoint",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "cannot read checkpoint",
        setup=_bytes("empty.pth", b""),
    ),
    Case(
        "wav_as_checkpoint", "separate", ("{mix}", "--model", "{mix}", "--out", "{tmp}/out"), "cannot read checkpoint"
    ),
    Case(
        "bare_state_dict",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "is not an Asteroid model file",
        setup=_package(lambda p: p["state_dict"]),
    ),
    Case(
        "other_architecture",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "only ConvTasNet is supported",
        setup=_package(_other_architecture),
    ),
    Case(
        "stft_filterbank",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "unsupported fb_name='stft'",
        setup=_package(_stft_filterbank),
    ),
    Case(
        "folder_as_checkpoint",
        "separate",
        ("{mix}", "--model", "{tmp}", "--out", "{tmp}/out"),
        "is a directory; pass the checkpoint file",
    ),
    # separate: the outputs and options
    Case(
        "out_is_a_file",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{bad}"),
        "is an existing file; pass a folder",
        setup=_file,
    ),
    Case(
        "out_unwritable",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{bad}/out"),
        "cannot create --out",
        setup=_file,
    ),
    Case(
        "same_stem_twice",
        "separate",
        ("{a}", "{b}", "--model", "{ckpt}", "--out", "{tmp}/out"),
        "would both write mix_s1.wav",
        setup=_same_stem,
    ),
    Case(
        "bad_segment",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--segment", "abc"),
        "use auto, off or a length in seconds",
    ),
    Case(
        "tile_width_unserved",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--tile-w", "70000"),
        "is not served by the plan",
    ),
    Case(
        "export_dir_without_onnxruntime",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--export-dir", "{tmp}"),
        "--export-dir is read by",
    ),
    # forward
    Case(
        "one_source_only",
        "forward",
        ("--mix", "{mix}", "--s1", "{mix}", "--model", "{ckpt}", "--runs-dir", "{tmp}/runs"),
        "the model has 2 source(s): pass --s1 and --s2, or none",
    ),
    Case(
        "source_length_mismatch",
        "forward",
        ("--mix", "{mix}", "--s1", "{s1}", "--s2", "{s2}", "--model", "{ckpt}", "--runs-dir", "{tmp}/runs"),
        "pass the mixture's own sources",
        setup=_short_source,
    ),
    # enhance
    Case(
        "enhance_with_a_separation_model",
        "enhance",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out"),
        "`enhance` is for one-output (n_src=1) models",
    ),
    # import-onnx
    Case("import_onnx_not_onnx", "import-onnx", ("{mix}", "--out", "{tmp}/x.pth"), "is not a readable ONNX file"),
    Case("import_onnx_out_is_a_folder", "import-onnx", ("{mix}", "--out", "{tmp}"), "is a folder"),
    # evaluate
    Case("metadata_missing", "evaluate", ("--metadata", "{tmp}/none.csv", "--model", "{ckpt}"), "does not exist"),
    Case(
        "metadata_paths_missing",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--runs-dir", "{tmp}/runs"),
        "file(s) that do not exist",
        setup=_metadata("missing_paths"),
    ),
    Case(
        "metadata_columns_missing",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "lacks column(s)",
        setup=_metadata("no_columns"),
    ),
    Case(
        "metadata_empty",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "lists no mixtures",
        setup=_metadata("no_rows"),
    ),
    # parity
    Case(
        "length_too_short",
        "parity",
        ("full-chain", "--random-preset", "tiny", "--length", "3", "--runs-dir", "{tmp}/runs"),
        "shorter than one encoder window",
    ),
    Case(
        "length_and_seconds",
        "parity",
        ("full-chain", "--random-preset", "tiny", "--length", "300", "--seconds", "1", "--runs-dir", "{tmp}/runs"),
        "pass one of them",
    ),
    Case(
        "unknown_backend",
        "parity",
        ("masker", "--random-preset", "tiny", "--backend", "nope", "--runs-dir", "{tmp}/runs"),
        "unknown backend 'nope'",
    ),
    Case(
        "hef_dir_without_hailo",
        "parity",
        ("masker", "--random-preset", "tiny", "--hef-dir", "{tmp}"),
        "--hef-dir is read by",
    ),
    Case(
        "noise_dir_with_float_backend",
        "parity",
        ("masker", "--random-preset", "tiny", "--noise-dir", "{tmp}"),
        "--noise-dir is read by quantized backends",
    ),
    Case(
        "hailo_quant_without_noise_dir",
        "parity",
        ("masker", "--random-preset", "tiny", "--backend", "hailo_quant"),
        "needs --noise-dir",
    ),
    Case(
        "noise_dir_not_a_noise_folder",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--backend", "hailo_quant", "--noise-dir", "{tmp}", "--out", "{tmp}/out"),
        "no noise_report.json",
    ),
    Case(
        "parity_truncated_checkpoint",
        "parity",
        ("masker", "--model", "{bad}", "--runs-dir", "{tmp}/runs"),
        "cannot read checkpoint",
        setup=_truncated_checkpoint,
    ),
    Case(
        "export_of_other_model",
        "parity",
        (
            "masker",
            "--random-preset",
            "tiny",
            "--seed",
            "5",
            "--backend",
            "onnxruntime",
            "--export-dir",
            "{export}",
            "--tile-w",
            "256",
            "--length",
            "40",
            "--runs-dir",
            "{tmp}/runs",
        ),
        "is not this model's stage",
        setup=_export("--path", "masker"),
    ),
    Case(
        "export_of_other_tile_width",
        "parity",
        (
            "masker",
            "--random-preset",
            "tiny",
            "--backend",
            "onnxruntime",
            "--export-dir",
            "{export}",
            "--tile-w",
            "64",
            "--length",
            "40",
            "--runs-dir",
            "{tmp}/runs",
        ),
        "--tile-w 64 disagrees with the export",
        setup=_export("--path", "masker"),
    ),
    # export
    Case(
        "monolithic_without_length",
        "export",
        ("--random-preset", "tiny", "--monolithic", "--out", "{tmp}/x"),
        "--monolithic needs --length",
    ),
    Case(
        "export_out_is_a_file",
        "export",
        ("--random-preset", "tiny", "--out", "{bad}"),
        "is an existing file; pass a folder",
        setup=_file,
    ),
    # check
    Case("interrupted_export", "check", ("{export}",), "no manifest.json in", setup=_export(edit=_no_manifest)),
    Case("check_a_file", "check", ("{bad}",), "is a file; pass the export folder", setup=_file),
    Case("edited_stage_file", "check", ("{export}",), "was changed after export", setup=_export(edit=_edited_stage)),
    Case(
        "corrupt_manifest",
        "check",
        ("{export}",),
        "is not a readable convtasnet-hailo manifest",
        setup=_export(edit=_corrupt_manifest),
    ),
    # compile and grid
    Case("compile_without_sdk", "compile", ("--export-dir", "{tmp}"), "hailo_sdk_client"),
    Case("compile_missing_export", "compile", ("--export-dir", "{tmp}/none", "--dry-run"), "is not a folder"),
    Case(
        "compile_monolithic_export",
        "compile",
        ("--export-dir", "{export}", "--dry-run"),
        "holds a monolithic export",
        setup=_export("--monolithic", "--length", "400"),
    ),
    Case(
        "grid_resume_not_a_grid",
        "grid",
        ("decoder", "--random-preset", "tiny", "--dry-run", "--resume", "{run}"),
        "so it is not a run folder of `compile-grid`",
        setup=_not_a_grid,
    ),
    Case(
        "grid_jobs_zero",
        "grid",
        ("decoder", "--random-preset", "tiny", "--dry-run", "--jobs", "0"),
        "--jobs 0: use 1 or more",
    ),
    Case(
        "grid_ray_with_jobs",
        "grid",
        ("decoder", "--random-preset", "tiny", "--dry-run", "--executor", "ray", "--jobs", "4"),
        "--jobs is for --executor local",
    ),
    Case(
        "compile_ray_address_local",
        "compile",
        ("--export-dir", "{tmp}", "--dry-run", "--ray-address", "h:6379"),
        "--ray-address needs --executor ray",
    ),
    Case(
        "evaluate_local_jobs",
        "evaluate",
        ("--metadata", "{tmp}/none.csv", "--model", "{ckpt}", "--jobs", "2"),
        "runs one mixture at a time",
    ),
    Case(
        "gln_in_stages_cln_model",
        "plan",
        ("--random-preset", "full-8k-causal", "--gln-in-stages"),
        "this model uses cLN: drop --gln-in-stages",
    ),
    Case(
        "gln_in_stages_with_blocks",
        "plan",
        ("--random-preset", "tiny", "--gln-in-stages", "--block-chan", "8"),
        "cannot be combined with --block-chan",
    ),
    Case(
        "stream_float_plan",
        "stream",
        ("{mix}", "--random-preset", "full-8k-causal", "--halo-edges", "--out", "{tmp}/s"),
        "streaming runs stages hop by hop",
    ),
    Case(
        "compile_gln_in_stages_export",
        "compile",
        ("--export-dir", "{export}", "--dry-run"),
        "this plan was built with --gln-in-stages and --halo-edges",
        setup=_export("--gln-in-stages", "--halo-edges"),
    ),
    Case(
        "bench_backend_always_timed",
        "bench",
        ("--random-preset", "tiny", "--seconds", "0.5", "--backend", "onnxruntime"),
        "bench always times torch_proxy and onnxruntime",
    ),
    Case(
        "bench_hailo_without_hefs",
        "bench",
        ("--random-preset", "tiny", "--seconds", "0.5", "--backend", "hailo_runtime"),
        "pass --hef-dir DIR",
    ),
    # --- the second round ---
    # nothing a user gave is overwritten (guard.py, before any work)
    Case(
        "separate_output_over_second_input",
        "separate",
        ("{tmp}/mix.wav", "{mix_s1}", "--model", "{ckpt}", "--out", "{tmp}"),
        "mix_s1.wav would overwrite the input",
        setup=_copies("mix_s1.wav"),
    ),
    Case(
        "separate_output_is_a_symlink_to_an_input",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out"),
        "would overwrite the input",
        setup=_output_linked("symlink"),
    ),
    Case(
        "separate_output_is_a_hard_link_to_the_model",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out"),
        "would overwrite the --model checkpoint",
        setup=_output_linked("hardlink"),
    ),
    Case(
        "enhance_output_over_second_input",
        "enhance",
        ("{noisy}", "{noisy_enhanced}", "--model", "{one}", "--out", "{tmp}"),
        "would overwrite the input",
        setup=_n_src_one,
    ),
    Case(
        "stream_outputs_over_references",
        "stream",
        ("{mix}", "--model", "{causal}", "--s1", "{mix_s1}", "--s2", "{mix_s2}", "--out", "{tmp}"),
        "would overwrite the --s1 reference",
        setup=_causal,
    ),
    Case(
        "import_onnx_over_its_graph",
        "import-onnx",
        ("{bad}", "--out", "{bad}"),
        "would overwrite the ONNX graph",
        setup=_bytes("model.onnx", b"not really onnx"),
    ),
    Case(
        "plan_json_over_checkpoint",
        "plan",
        ("--model", "{ckpt}", "--json", "{ckpt}"),
        "would overwrite the --model checkpoint",
    ),
    Case(
        "plan_png_over_its_json",
        "plan",
        ("--random-preset", "tiny", "--json", "{tmp}/p.png"),
        "are one file, and both are outputs",
    ),
    Case(
        "bench_json_over_checkpoint",
        "bench",
        ("--model", "{ckpt}", "--seconds", "0.5", "--json", "{ckpt}"),
        "would overwrite the --model checkpoint",
    ),
    Case(
        "export_over_its_checkpoint",
        "export",
        ("--model", "{named}", "--out", "{tmp}/exp"),
        "would overwrite the --model checkpoint",
        setup=_checkpoint_named("exp/manifest.json"),
    ),
    Case(
        "evaluate_resume_over_metadata",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--resume", "{run}"),
        "would overwrite the --metadata file",
        setup=_resume_over_metadata,
    ),
    # finite or refused: float options, weights, values met mid-run
    Case(
        "min_snr_db_nan",
        "import-onnx",
        ("{mix}", "--out", "{tmp}/x.pth", "--min-snr-db", "nan"),
        "argument --min-snr-db: 'nan' is not a finite number",
    ),
    Case(
        "seconds_inf",
        "bench",
        ("--random-preset", "tiny", "--seconds", "inf"),
        "argument --seconds: 'inf' is not a finite number",
    ),
    Case(
        "segment_inf",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--segment", "inf"),
        "is not a finite length",
    ),
    Case(
        "overlap_nan",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--overlap", "nan"),
        "argument --overlap: 'nan' is not a finite number",
    ),
    Case(
        "hop_ms_inf",
        "stream",
        ("{mix}", "--random-preset", "tiny", "--hop-ms", "inf", "--out", "{tmp}/s"),
        "argument --hop-ms: 'inf' is not a finite number",
    ),
    Case(
        "target_db_nan",
        "noise",
        ("--random-preset", "tiny", "--audio", "{mix}", "--target-db", "nan", "--out", "{tmp}/n"),
        "argument --target-db: 'nan' is not a finite number",
    ),
    Case(
        "device_param_nan",
        "bench",
        ("--random-preset", "tiny", "--device-param", "utilization=nan"),
        "argument --device-param: 'nan' is not a finite number",
    ),
    Case(
        "nan_weight",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "masker.TCN.0.shared_block.0.weight holds 1 NaN/Inf value(s)",
        setup=_weights(_nan_weight),
    ),
    Case(
        "inf_weight_parity",
        "parity",
        ("masker", "--model", "{bad}", "--runs-dir", "{tmp}/runs"),
        "decoder.filterbank._filters holds 1 NaN/Inf value(s)",
        setup=_weights(_inf_weight),
    ),
    Case(
        "overflowing_weights",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "holds NaN/Inf values (the model overflows on this input",
        setup=_weights(_overflowing_weights),
    ),
    Case(
        "weight_not_a_tensor",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "is a list, not a tensor",
        setup=_weights(lambda s: s.update({"encoder.filterbank._filters": [[0.0]]})),
    ),
    Case(
        "integer_weights",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "holds int64 values, not floating point",
        setup=_weights(lambda s: s.update({"masker.mask_net.1.bias": s["masker.mask_net.1.bias"].long()})),
    ),
    Case(
        "weight_of_wrong_shape",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "model_args imply (12,)",
        setup=_weights(lambda s: s.update({"masker.TCN.0.shared_block.0.bias": torch.zeros(13)})),
    ),
    Case(
        "weight_missing",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "lacks key masker.mask_net.1.bias",
        setup=_weights(lambda s: s.pop("masker.mask_net.1.bias")),
    ),
    Case(
        "state_dict_a_list",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "state_dict is a list, not a mapping",
        setup=_package(lambda p: p.update({"state_dict": [1, 2]})),
    ),
    Case(
        "model_args_a_string",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "model_args is a str, not a mapping",
        setup=_model_args(model_args="n_filters=16"),
    ),
    Case(
        "causal_as_a_string",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "causal='false' must be true or false",
        setup=_model_args(causal="false"),
    ),
    Case(
        "n_filters_as_a_string",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "n_filters='16' must be an integer",
        setup=_model_args(n_filters="16"),
    ),
    # untrusted run files stay untrusted: nothing outside an export read, typed records
    Case(
        "manifest_stage_outside",
        "check",
        ("{export}",),
        "points outside its folder",
        setup=_export(edit=_manifest_edit(_stage_outside)),
    ),
    Case(
        "manifest_stage_absolute",
        "check",
        ("{export}",),
        "'/etc/passwd' points outside its folder",
        setup=_export(edit=_manifest_edit(_stage_absolute)),
    ),
    Case(
        "manifest_stage_symlink_out",
        "check",
        ("{export}",),
        "is a symlink out of",
        setup=_export(edit=_manifest_edit(_stage_symlink_out)),
    ),
    Case(
        "manifest_stage_outside_onnxruntime",
        "parity",
        (
            "masker",
            "--random-preset",
            "tiny",
            "--backend",
            "onnxruntime",
            "--export-dir",
            "{export}",
            "--tile-w",
            "256",
            "--length",
            "40",
            "--runs-dir",
            "{tmp}/runs",
        ),
        "points outside its folder",
        setup=_export("--path", "masker", edit=_manifest_edit(_stage_outside)),
    ),
    Case(
        "manifest_without_stages",
        "check",
        ("{export}",),
        "lists no stages",
        setup=_export(edit=_manifest_edit(_no_stages)),
    ),
    Case(
        "manifest_stage_removed",
        "check",
        ("{export}",),
        "stages are missing or were added",
        setup=_export(edit=_manifest_edit(_stage_removed)),
    ),
    Case(
        "manifest_field_of_wrong_type",
        "check",
        ("{export}",),
        "shape is '1x1x2056', not a list",
        setup=_export(edit=_manifest_edit(_stage_of_wrong_type)),
    ),
    Case(
        "noise_report_a_list",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--backend", "hailo_quant", "--noise-dir", "{noise}", "--out", "{tmp}/out"),
        "is not a `noise` report (noise_report.json is a list, not an object)",
        setup=_noise_dir("[]"),
    ),
    Case(
        "noise_report_not_json",
        "separate",
        ("{mix}", "--model", "{ckpt}", "--backend", "hailo_quant", "--noise-dir", "{noise}", "--out", "{tmp}/out"),
        "is not a readable noise report",
        setup=_noise_dir("{oops"),
    ),
    Case(
        "evaluate_run_json_a_list",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--resume", "{run}"),
        "holds a JSON list, not the record",
        setup=lambda tmp: {**_metadata("ok")(tmp), **_run_file("evaluate_run.json", "[]")(tmp)},
    ),
    Case(
        "grid_cases_json_a_list",
        "grid",
        ("decoder", "--random-preset", "tiny", "--dry-run", "--resume", "{run}"),
        "holds a JSON list, not a grid's case list",
        setup=_run_file("cases.json", "[1, 2]"),
    ),
    # tabular input as a spreadsheet user writes it
    Case(
        "metadata_short_row",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "line 3 has 4 value(s) and the header 5 column(s)",
        setup=_csv(lambda lines: lines[:2] + [lines[2].rsplit(",", 1)[0]]),
    ),
    Case(
        "metadata_long_row",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "line 2 has 6 value(s) and the header 5 column(s)",
        setup=_csv(lambda lines: [lines[0], lines[1] + ",extra", lines[2]]),
    ),
    Case(
        "metadata_latin1",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "is not UTF-8 text (line 2 holds byte 0xe9",
        setup=_csv(lambda lines: [lines[0], lines[1].replace("100-1", "caf\u00e9-1", 1), lines[2]], "latin-1"),
    ),
    Case(
        "metadata_duplicate_ids",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "is on lines 2 and 3; give each mixture its own ID",
        setup=_csv(lambda lines: [lines[0], lines[1], lines[1]]),
    ),
    Case(
        "metadata_length_not_a_number",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "line 2: length 'about 4000' is not a whole number",
        setup=_csv(lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + ",about 4000", lines[2]]),
    ),
    Case(
        "metadata_empty_path",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "line 3: source_2_path is empty",
        setup=_csv(lambda lines: [lines[0], lines[1], ",".join(lines[2].split(",")[:3] + ["", "4000"])]),
    ),
    Case(
        "metadata_column_twice",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "has column length twice",
        setup=_csv(lambda lines: [lines[0] + ",length"] + [line + ",4000" for line in lines[1:]]),
    ),
    # resources: what is not a regular file, what cannot fit, an SDK interpreter that cannot run
    Case("fifo_as_audio", "separate", ("{fifo}",) + SEP[1:], "is a FIFO (named pipe)", setup=_fifo("pipe.wav")),
    Case(
        "fifo_as_checkpoint",
        "separate",
        ("{mix}", "--model", "{fifo}", "--out", "{tmp}/out"),
        "is a FIFO (named pipe)",
        setup=_fifo("pipe.pth"),
    ),
    Case(
        "fifo_as_metadata",
        "evaluate",
        ("--metadata", "{fifo}", "--model", "{ckpt}"),
        "is a FIFO (named pipe)",
        setup=_fifo("pipe.csv"),
    ),
    Case(
        "fifo_as_onnx",
        "import-onnx",
        ("{fifo}", "--out", "{tmp}/x.pth"),
        "is a FIFO (named pipe)",
        setup=_fifo("pipe.onnx"),
    ),
    Case("device_as_audio", "separate", ("/dev/zero",) + SEP[1:], "/dev/zero is a device"),
    Case(
        "length_beyond_memory",
        "parity",
        ("full-chain", "--random-preset", "tiny", "--length", "1000000000", "--runs-dir", "{tmp}/runs"),
        "GiB of memory and",
    ),
    Case("seconds_beyond_memory", "bench", ("--random-preset", "tiny", "--seconds", "1e6"), "GiB of memory and"),
    Case(
        "monolithic_length_beyond_memory",
        "export",
        ("--random-preset", "tiny", "--monolithic", "--length", "1000000000", "--out", "{tmp}/x"),
        "GiB of memory and",
    ),
    Case(
        "hailo_python_that_fails",
        "compile",
        ("--export-dir", "{tmp}", "--hailo-python", "/bin/false"),
        "--hailo-python /bin/false cannot import hailo_sdk_client",
    ),
    # every input checked before the first output
    Case(
        "one_sample_after_a_good_file",
        "separate",
        ("{mix}", "{short}", "--model", "{ckpt}", "--out", "{tmp}/out"),
        "short.wav holds 1 sample(s) at 8000 Hz, fewer than one encoder window",
        setup=_one_sample_after_a_good_file,
    ),
    Case(
        "listed_file_not_audio",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}"),
        "as audio",
        setup=lambda tmp: {**_metadata("ok")(tmp), **_corrupt_second_listed(tmp)},
    ),
    # accepted, and said
    Case(
        "metadata_as_a_spreadsheet_writes_it",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--runs-dir", "{tmp}/runs"),
        "values separated by ';'",
        exit=0,
        stream="err",
        setup=_csv(_spreadsheet),
    ),
    # accepted, and said
    Case("float_beyond_one", "separate", ("{bad}",) + SEP[1:], "instead of clipping", exit=0, setup=_loud),
    Case(
        "pcm_8bit",
        "separate",
        ("{bad}",) + SEP[1:],
        "read PCM_U8 samples as float32",
        exit=0,
        stream="err",
        setup=_format("u8.wav", 8000, "PCM_U8"),
    ),
    Case(
        "pcm_24bit_48k",
        "separate",
        ("{bad}",) + SEP[1:],
        "read PCM_24 samples as float32",
        exit=0,
        stream="err",
        setup=_format("p24.wav", 48000, "PCM_24"),
    ),
    Case(
        "pcm_32bit_44k1",
        "separate",
        ("{bad}",) + SEP[1:],
        "resampled 44100 Hz -> 8000 Hz",
        exit=0,
        stream="err",
        setup=_format("p32.wav", 44100, "PCM_32"),
    ),
    # issue 39: samples that are not audio are named as what they are, not as NaN/Inf
    Case(
        "float64_sample_beyond_float32",
        "separate",
        ("{bad}",) + SEP[1:],
        "holds 3e+300 at 0.013 s (sample 100), beyond +-32768: not audio samples",
        setup=lambda tmp: {"bad": _wav(tmp, "d.wav", _with(speech_like(0.5, 8000, 1), 100, 3e300), subtype="DOUBLE")},
    ),
    Case(
        "float_sample_beyond_32768",
        "separate",
        ("{bad}",) + SEP[1:],
        "holds 1e+06 at 0.025 s (sample 200), beyond +-32768",
        setup=lambda tmp: {"bad": _wav(tmp, "f.wav", _with(speech_like(0.5, 8000, 1), 200, 1e6), subtype="FLOAT")},
    ),
    # issue 39: results flagged, not averaged
    Case(
        "evaluate_silent_reference",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--out", "{tmp}/runs"),
        "is silent (power below -80 dBFS): not scored, left out of the means",
        exit=0,
        setup=lambda tmp: _silent_source_tree(tmp),
    ),
]


# -- Issue 39, round 3: files read back as untrusted, and the leftovers of round 2 -------------


def _rehash(out: Path) -> None:
    """The manifest's hashes updated to the files as edited (what a careful editor would do)."""
    import hashlib

    data = json.loads((out / "manifest.json").read_text())
    for stage in data["stages"]:
        stage["sha256"] = hashlib.sha256((out / stage["file"]).read_bytes()).hexdigest()
    plan = data["device_plan"]
    plan["sha256"] = hashlib.sha256((out / plan["file"]).read_bytes()).hexdigest()
    plan["arrays_sha256"] = hashlib.sha256((out / plan["arrays"]).read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(data))


def _stages_swapped(out: Path) -> None:
    one, two = out / "tcn1_depth.onnx", out / "tcn2_depth.onnx"
    first, second = one.read_bytes(), two.read_bytes()
    one.write_bytes(second)
    two.write_bytes(first)
    _rehash(out)


def _device_plan_stride_zero(out: Path) -> None:
    plan = json.loads((out / "device_plan.json").read_text())
    plan["steps"][0]["inputs"]["tuple"][0]["geometry"]["stride"] = 0
    (out / "device_plan.json").write_text(json.dumps(plan))
    _rehash(out)


def _device_plan_pickled(out: Path) -> None:
    with open(out / "device_plan.npz", "wb") as handle:
        np.savez(handle, a0=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _rehash(out)


def _port_stride_zero(out: Path, data: dict) -> None:
    data["stages"][0]["inputs"][0]["stride"] = 0


class _Pickled:
    """A checkpoint entry torch's weights-only loader refuses (a class it does not allow)."""


def _pickled_checkpoint(tmp):
    torch.save({"model_name": "ConvTasNet", "model_args": {}, "state_dict": {}, "x": _Pickled()}, tmp / "p.pth")
    return {"bad": str(tmp / "p.pth")}


def _huge_model_args(package):
    package["model_args"]["bn_chan"] = package["model_args"]["hid_chan"] = 1 << 20


def _rate_1e9(package):
    package["model_args"]["sample_rate"] = 10**9


def _header_rate(rate: int):
    """A WAV whose header's sample rate field (bytes 24..27) says ``rate``."""

    def setup(tmp):
        import struct

        path = Path(_wav(tmp, "rate.wav", speech_like(0.5, 8000, 5), subtype="PCM_16"))
        data = bytearray(path.read_bytes())
        data[24:28] = struct.pack("<I", rate)
        path.write_bytes(bytes(data))
        return {"bad": str(path)}

    return setup


def _onnx_conv(tmp: Path, edit) -> dict:
    """A one-Conv ONNX graph (an encoder) whose weight ``edit`` damages."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((16, 1, 16), np.float32), "encoder.weight")
    node = helper.make_node("Conv", ["wav", "encoder.weight"], ["out"], strides=[8])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("wav", TensorProto.FLOAT, [1, 1, 4000])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [weight],
    )
    model = helper.make_model(graph)
    edit(model.graph.initializer[0], tmp)
    onnx.save(model, str(tmp / "model.onnx"))
    return {"bad": str(tmp / "model.onnx")}


def _cut_short(weight, tmp):
    weight.raw_data = weight.raw_data[:100]


def _external(weight, tmp):
    from onnx.external_data_helper import set_external_data

    (tmp / "w.bin").write_bytes(weight.raw_data)
    set_external_data(weight, location="w.bin")
    weight.ClearField("raw_data")


def _phase_inverted(tmp):
    wav = speech_like(0.5, 8000, 6)
    return {"bad": _wav(tmp, "inverted.wav", np.stack([wav, -wav], axis=1), subtype="FLOAT")}


def _stereo_reference(tmp):
    wav = speech_like(0.5, 8000, 7)
    return {"bad": _wav(tmp, "s1.wav", np.stack([wav, wav], axis=1))}


def _causal_gln(package):
    package["model_args"]["causal"] = True
    package["model_args"]["norm_type"] = "gLN"


def _evaluated_then_torn(tmp):
    """An `evaluate` run of the tiny tree, its CSV's first row then cut short by hand."""
    from tests.conftest import write_librimix_tree

    metadata = write_librimix_tree(tmp / "tree", n=2)
    assert (
        main(["evaluate", "--metadata", str(metadata), "--model", str(tmp / "tiny.pth"), "--out", str(tmp / "r")]) == 0
    )
    run = next((tmp / "r").iterdir())
    lines = (run / "evaluate_per_utterance.csv").read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:4])
    (run / "evaluate_per_utterance.csv").write_text("\n".join(lines) + "\n")
    return {"bad": str(metadata), "run": str(run)}


def _finetuned(tmp):
    """A real one-step finetune run in {tmp}/ft of the tiny model, and another model beside it."""
    argv = ["--model", str(tmp / "tiny.pth"), "--data", str(tmp / "mix.wav"), "--steps", "1", "--out", str(tmp / "ft")]
    assert main(["finetune", *argv]) == 0
    package = torch.load(tmp / "tiny.pth", weights_only=True)
    first = next(iter(package["state_dict"]))
    package["state_dict"][first] = package["state_dict"][first] * 1.01
    torch.save(package, tmp / "other.pth")
    return {"ft": str(tmp / "ft"), "other": str(tmp / "other.pth")}


def _state_without_record(tmp):
    (tmp / "ft").mkdir()
    torch.save({"step": 1}, tmp / "ft" / "finetune_state.pt")
    return {"ft": str(tmp / "ft")}


FINETUNE = ("--data", "{mix}", "--steps", "2", "--out", "{ft}", "--resume")


ORT_EXPORT = ("{mix}", "--export-dir", "{export}", "--backend", "onnxruntime", "--out", "{tmp}/out")
CASES += [
    Case(
        "stage_files_swapped",
        "check",
        ("{export}",),
        "(stage files swapped or replaced?)",
        setup=_export(edit=_stages_swapped),
    ),
    Case(
        "stage_files_swapped_run",
        "separate",
        ORT_EXPORT,
        "(stage files swapped or replaced?)",
        setup=_export(edit=_stages_swapped),
    ),
    Case(
        "device_plan_stride_zero",
        "separate",
        ORT_EXPORT,
        "Geometry.stride is 0, outside 1..",
        setup=_export(edit=_device_plan_stride_zero),
    ),
    Case(
        "device_plan_pickled_arrays",
        "separate",
        ORT_EXPORT,
        "Object arrays cannot be loaded",
        setup=_export(edit=_device_plan_pickled),
    ),
    Case(
        "manifest_port_stride_zero",
        "check",
        ("{export}",),
        "stride is 0, outside 1..",
        setup=_export(edit=_manifest_edit(_port_stride_zero)),
    ),
    Case(
        "checkpoint_holding_a_pickle",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "holds Python objects besides tensors",
        setup=_pickled_checkpoint,
    ),
    Case(
        "model_args_of_a_huge_model",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "model_args imply (1048576, 16, 1)",
        setup=_package(_huge_model_args),
    ),
    Case(
        "model_args_rate_1e9",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "sample_rate=1000000000 Hz is not an audio rate",
        setup=_package(_rate_1e9),
    ),
    Case(
        "wav_header_rate_1_hz",
        "separate",
        ("{bad}",) + SEP[1:],
        "says its samples are at 1 Hz, not an audio rate",
        setup=_header_rate(1),
    ),
    Case(
        "wav_header_rate_1e9",
        "separate",
        ("{bad}",) + SEP[1:],
        "at 1000000000 Hz, not an audio rate",
        setup=_header_rate(10**9),
    ),
    Case(
        "import_onnx_rate_1e9",
        "import-onnx",
        ("{mix}", "--out", "{tmp}/x.pth", "--sample-rate", "1e9"),
        "is not an integer",
    ),
    Case(
        "import_onnx_rate_huge",
        "import-onnx",
        ("{mix}", "--out", "{tmp}/x.pth", "--sample-rate", "1000000000"),
        "Hz is not an audio rate",
    ),
    Case(
        "import_onnx_rate_negative",
        "import-onnx",
        ("{mix}", "--out", "{tmp}/x.pth", "--sample-rate", "-8000"),
        "must be >= 1",
    ),
    Case(
        "import_onnx_initializer_cut_short",
        "import-onnx",
        ("{bad}", "--out", "{tmp}/x.pth"),
        "the file was cut short or damaged",
        setup=lambda tmp: _onnx_conv(tmp, _cut_short),
    ),
    Case(
        "import_onnx_external_weights",
        "import-onnx",
        ("{bad}", "--out", "{tmp}/x.pth"),
        "is stored in an external file, which is not read",
        setup=lambda tmp: _onnx_conv(tmp, _external),
    ),
    Case("name_with_a_newline", "separate", ("{tmp}/nope\nb.wav",) + SEP[1:], "nope\\nb.wav does not exist"),
    Case(
        "reference_with_two_channels",
        "forward",
        ("--mix", "{mix}", "--s1", "{bad}", "--s2", "{mix}", "--model", "{ckpt}", "--runs-dir", "{tmp}/runs"),
        "has 2 channels where one is read",
        setup=_stereo_reference,
    ),
    Case(
        "phase_inverted_stereo",
        "separate",
        ("{bad}",) + SEP[1:],
        "channels cancel when averaged to mono",
        setup=_phase_inverted,
    ),
    Case(
        "evaluate_torn_csv_row",
        "evaluate",
        ("--metadata", "{bad}", "--model", "{ckpt}", "--resume", "{run}"),
        "line 2 has 4 value(s), the header",
        setup=_evaluated_then_torn,
    ),
    Case(
        "library_warning_not_before_the_error",
        "separate",
        ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
        "lacks key masker.TCN.0.shared_block.3.0.weight",
        setup=_package(_causal_gln),
    ),
    Case(
        "finetune_resume_of_another_model",
        "finetune",
        ("--model", "{other}", *FINETUNE),
        "that run had another model_sha256",
        setup=_finetuned,
    ),
    Case(
        "finetune_resume_with_other_options",
        "finetune",
        ("--model", "{ckpt}", "--lr", "0.1", *FINETUNE),
        "that run had another learning_rate (0.0001)",
        setup=_finetuned,
    ),
    Case(
        "finetune_resume_without_its_record",
        "finetune",
        ("--model", "{ckpt}", *FINETUNE),
        "no finetune_run.json says which model and options that run used",
        setup=_state_without_record,
    ),
]


def _with(wav: np.ndarray, at: int, value: float) -> np.ndarray:
    out = wav.astype(np.float64)
    out[at] = value
    return out


def _silent_source_tree(tmp: Path) -> dict:
    import csv

    from tests.conftest import write_librimix_tree

    metadata = write_librimix_tree(tmp / "tree", n=2)
    with open(metadata, newline="") as handle:
        second = list(csv.DictReader(handle))[1]
    sf.write(second["source_2_path"], np.zeros(4000), 8000, subtype="FLOAT")
    return {"bad": str(metadata)}


def run_case(case: Case, tmp: Path, checkpoint: Path, capsys) -> tuple[int, str, str]:
    import shutil

    tmp = tmp / "case"
    tmp.mkdir()
    shutil.copy(checkpoint, tmp / "tiny.pth")
    values = {"ckpt": str(tmp / "tiny.pth"), "mix": _wav(tmp, "mix.wav", speech_like(0.5, 8000, 9)), "tmp": str(tmp)}
    values.update(case.setup(tmp))
    capsys.readouterr()
    try:
        code = main([case.command] + [a.format(**values) for a in case.argv])
    except SystemExit as exc:  # an option argparse refuses (its type functions): one line, exit 2
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, tmp_path, tiny_checkpoint, capsys):
    code, out, err = run_case(case, tmp_path, tiny_checkpoint, capsys)
    assert "Traceback" not in out + err
    assert code == case.exit, (code, out[-500:], err)
    if case.exit:
        assert err.count("\n") == 1 and case.message in err, err
        assert err.startswith(f"convtasnet-hailo {case.command}: error: ")
    else:
        assert case.message in (out if case.stream == "out" else err), (out, err)


def test_the_catalogue_is_large_and_documented():
    errors = [c for c in CASES if c.exit]
    assert len(CASES) >= 149 and len(errors) >= 25 and len({c.id for c in CASES}) == len(CASES)
    assert {"separate", "forward", "evaluate", "parity", "export", "check", "compile"} <= {c.command for c in errors}
    doc = DOC.read_text()
    for case in CASES:
        assert f"`{case.id}`" in doc, f"docs/bad_inputs.md lacks case {case.id}"


def test_loud_float_input_is_scaled_together_and_recorded(tmp_path, tiny_checkpoint, capsys):
    path = _loud(tmp_path)["bad"]
    assert main(["separate", path, "--model", str(tiny_checkpoint), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "separate_run.json").read_text())
    (entry,) = record["files"]
    assert 0 < entry["gain"] < 1 and record["complete"] is True
    assert any("beyond +-1.0" in note for note in entry["notes"])
    peaks = [np.abs(sf.read(tmp_path / "out" / f"loud_s{i}.wav")[0]).max() for i in (1, 2)]
    assert max(peaks) == pytest.approx(0.99, abs=1e-3)  # scaled, not clipped: the loudest source at 0.99


def test_same_stem_inputs_overwrite_nothing(tmp_path, tiny_checkpoint, capsys):
    values = _same_stem(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mix_s1.wav").write_bytes(b"earlier result")
    assert (
        main(["separate", values["a"], values["b"], "--model", str(tiny_checkpoint), "--out", str(tmp_path / "out")])
        == 2
    )
    assert (tmp_path / "out" / "mix_s1.wav").read_bytes() == b"earlier result"


def test_a_full_disk_is_one_line_and_keeps_the_finished_files(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """libsndfile reports a full disk as its own error (not an OSError) when the second input's
    first source is written: one line, exit 2, the first input's sources intact, no partial file."""
    import soundfile

    first, second = (
        _wav(tmp_path, "a.wav", speech_like(0.5, 8000, 1)),
        _wav(tmp_path, "b.wav", speech_like(0.5, 8000, 2)),
    )
    real_write = soundfile.SoundFile.write

    def write(self, data):  # separate writes its sources block by block (separation/written.py)
        if "b_s1.wav" in self.name:
            raise soundfile.LibsndfileError(2, prefix="Error writing: ")  # libsndfile's "System error."
        return real_write(self, data)

    monkeypatch.setattr(soundfile.SoundFile, "write", write)
    out = tmp_path / "out"
    assert main(["separate", first, second, "--model", str(tiny_checkpoint), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()  # progress lines (stderr) come before the one error line
    errors = [line for line in lines if ": error:" in line]
    assert errors == lines[-1:] and "Traceback" not in "\n".join(lines), lines
    err = errors[0]
    assert "cannot write" in err and "b_s1.wav" in err and "free space" in err, err
    assert sorted(p.name for p in out.glob("*.wav")) == ["a_s1.wav", "a_s2.wav"]
    assert all(sf.info(out / name).frames == 4000 for name in ("a_s1.wav", "a_s2.wav"))
    assert not list(out.glob(".*")), "a partial file was left"


def test_a_file_too_long_to_separate_whole_is_refused_before_any_output(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """The memory a whole-file pass needs is known from the file's length: on a machine that
    cannot hold it, separate says so (and how to segment) before writing anything."""
    import convtasnet_hailo.resources

    monkeypatch.setattr(convtasnet_hailo.resources, "available_memory_bytes", lambda: 100_000)
    good, out = _wav(tmp_path, "mix.wav", speech_like(0.5, 8000, 1)), tmp_path / "out"
    assert main(["separate", good, "--model", str(tiny_checkpoint), "--out", str(out), "--segment", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "whole" in err and "KiB of memory and 98 KiB" in err and "--segment 30" in err, err
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize(
    "error, code, line",
    [
        (MemoryError(), 2, "error: out of memory"),
        # torch's allocators raise RuntimeError (c10/core/impl/alloc_cpu.cpp; the CUDA caching allocator)
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                "tried to allocate 4398046511104 bytes. Error code 12 (Cannot allocate memory)"
            ),
            2,
            "error: out of memory ([enforce fail at alloc_cpu.cpp:127]",
        ),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore"), 2, "error: out of memory (CUDA out"),
        (OSError(28, "No space left on device", "/x/y"), 2, "error: No space left on device (/x/y)"),
        (RuntimeError("an invariant broke"), 3, "internal error, a bug in convtasnet-hailo"),
    ],
)
def test_the_top_level_maps_the_machine_to_one_line_and_shows_a_bug(error, code, line, capsys, monkeypatch):
    import convtasnet_hailo.commands.doctor

    def fail(request):
        raise error

    monkeypatch.setattr(convtasnet_hailo.commands.doctor, "run", fail)
    assert main(["doctor"]) == code
    err = capsys.readouterr().err
    assert err.startswith("convtasnet-hailo doctor: ") and line in err.splitlines()[0]
    if code == 3:  # a genuine bug keeps its traceback, under the line saying it is one
        assert "Traceback" in err and "an invariant broke" in err.splitlines()[-1]
    else:
        assert err.count("\n") == 1


@pytest.mark.parametrize(
    "module, argv",
    [
        ("hailo_sdk_client", ["compile", "--export-dir", "."]),
        (
            "hailo_platform",
            ["parity", "masker", "--random-preset", "tiny", "--backend", "hailo_runtime", "--hef-dir", "."],
        ),
    ],
)
def test_an_sdk_that_fails_at_import_is_one_line(module, argv, tmp_path, capsys, monkeypatch):
    """A binding raising something other than ImportError when imported (a library mismatch)."""
    package = tmp_path / "site" / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('libhailort.so.4.23: version mismatch')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--runs-dir", str(tmp_path / "runs")] if argv[0] == "parity" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fails at import" in err and "version mismatch" in err, err


# Nothing a user gave is changed: every writing command, its --out (or runs folder) the inputs' own
# folder, the inputs named like the command's outputs. Every file there before is hashed before and
# after; the run may refuse (2) or succeed (0), never change one of them.


def _checkpoint(tmp: Path, name: str, **changes) -> str:
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    if changes.get("causal"):
        changes["norm_type"] = NormType.CLN
    save_model(random_model(dataclasses.replace(TINY, **changes), seed=4), tmp / name)
    return str(tmp / name)


def _audio(tmp: Path, *names: str) -> list[str]:
    """WAV files under any names (libsndfile reads them by content)."""
    for i, name in enumerate(names):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp / name, speech_like(0.5, 8000, 30 + i), 8000, format="WAV")
    return [str(tmp / name) for name in names]


def _metadata_as(tmp: Path, name: str) -> str:
    from tests.conftest import write_librimix_tree

    csv_path = write_librimix_tree(tmp / "tree", n=1)
    return str(csv_path.rename(tmp / name))


def _as_export(tmp: Path) -> str:
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(tmp)]) == 0
    return str(tmp)


WRITERS: dict[str, Callable[[Path], list[str]]] = {
    "separate": lambda d: [
        "separate",
        *_audio(d, "mix.wav", "mix_s1.wav"),
        "--model",
        _checkpoint(d, "mix_s2.wav"),
        "--out",
        str(d),
    ],
    "enhance": lambda d: [
        "enhance",
        *_audio(d, "a.wav", "a_enhanced.wav"),
        "--model",
        _checkpoint(d, "enhance_run.json", n_src=1),
        "--out",
        str(d),
    ],
    "forward": lambda d: [
        "forward",
        "--mix",
        *_audio(d, "mixture.wav"),
        "--s1",
        *_audio(d, "hailo_src1.wav"),
        "--s2",
        *_audio(d, "hailo_src2.wav"),
        "--model",
        _checkpoint(d, "separation.png"),
        "--runs-dir",
        str(d),
    ],
    "evaluate": lambda d: [
        "evaluate",
        "--metadata",
        _metadata_as(d, "evaluate_per_utterance.csv"),
        "--model",
        _checkpoint(d, "evaluate_summary.json"),
        "--resume",
        str(d),
    ],
    "stream": lambda d: [
        "stream",
        *_audio(d, "mix.wav"),
        "--s1",
        *_audio(d, "mix_s1.wav"),
        "--s2",
        *_audio(d, "mix_s2.wav"),
        "--model",
        _checkpoint(d, "stream_run.json", causal=True),
        "--out",
        str(d),
    ],
    "import-onnx": lambda d: ["import-onnx", *_audio(d, "model.onnx"), "--out", str(d / "model.onnx")],
    "plan": lambda d: ["plan", "--model", _checkpoint(d, "p.png"), "--json", str(d / "p.json")],
    "bench": lambda d: ["bench", "--model", _checkpoint(d, "b.png"), "--seconds", "0.5", "--json", str(d / "b.json")],
    "export": lambda d: ["export", "--model", _checkpoint(d, "manifest.json"), "--out", str(d)],
    "noise": lambda d: [
        "noise",
        "--audio",
        *_audio(d, "noise_layers.png"),
        "--model",
        _checkpoint(d, "noise_report.json"),
        "--tile-w",
        "16",
        "--calib-count",
        "4",
        "--out",
        str(d),
    ],
    "compile": lambda d: [
        "compile",
        "--export-dir",
        _as_export(d),
        "--calib",
        *_audio(d, "hailo/hailo8/compile_summary.tsv"),
        "--calib-count",
        "4",
        "--dry-run",
    ],
    "finetune": lambda d: [
        "finetune",
        "--model",
        _checkpoint(d, "finetuned.pth"),
        "--data",
        *_audio(d, "calibration_ranges.json"),
        "--steps",
        "1",
        "--max-minutes",
        "1",
        "--out",
        str(d),
    ],
    "parity": lambda d: [
        "parity",
        "full-chain",
        "--model",
        _checkpoint(d, "parity.pth"),
        "--length",
        "400",
        "--tile-w",
        "16",
        "--runs-dir",
        str(d),
    ],
}


def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_no_writing_command_changes_a_file_it_was_given(command, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    argv = WRITERS[command](folder)
    before = _hashes(folder)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    after = _hashes(folder)
    assert code in (0, 2) and "Traceback" not in err, (code, err[-800:])
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"{command} changed or removed {changed}: {err}"
    if code == 2:  # refused: by the guard, naming the output and the input
        assert "would overwrite" in err and err.count("\n") == 1, err


def test_every_writing_command_is_in_the_property(capsys):
    """A new command that writes files joins WRITERS (check and doctor write nothing; compile-grid and
    demo write into fresh run folders, as check-audio and parity do, which are covered; check-audio
    under its old name forward, the same parser; build writes only into a new or empty --out, or
    its own build folder on --resume: test_build_refuses_an_out_holding_other_files)."""
    from convtasnet_hailo.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands - set(WRITERS) == {"check", "doctor", "compile-grid", "grid", "demo", "check-audio", "build"}


def test_build_refuses_an_out_holding_other_files(tmp_path, capsys):
    """`build` never writes beside a user's files: an --out that is not new, empty or a build is refused."""
    from convtasnet_hailo.assets import DEMO_MIXTURE, DEMO_MODEL

    mix = tmp_path / "mixture.wav"
    mix.write_bytes(DEMO_MIXTURE.read_bytes())
    argv = ["build", "--model", str(DEMO_MODEL), "--hw-arch", "hailo8", "--calib", str(mix), str(mix)]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not an empty folder" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixture.wav"]


def _markdown_table() -> str:
    """Runs every case and prints the doc's table with the real messages."""
    import contextlib
    import io
    import tempfile

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    rows = ["| case | command | exit | what the user sees |", "|---|---|---|---|"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            save_model(random_model(TINY, seed=11), tmp / "ckpt.pth")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run_case(case, tmp, tmp / "ckpt.pth", _NoCapture())[0]
            text = (
                err.getvalue().strip()
                if case.exit or case.stream == "err"
                else next(line for line in out.getvalue().splitlines() if case.message in line)
            )
            line = next((t for t in text.splitlines() if case.message in t), text.splitlines()[-1] if text else "")
            line = line.replace(folder, "…").replace("|", "\\|")
            rows.append(f"| `{case.id}` | {case.command} | {code} | {line} |")
    return "\n".join(rows)


class _NoCapture:
    def readouterr(self):
        return self

    out = err = ""


if __name__ == "__main__":
    print(_markdown_table())


# -- The Python API (issue 39): a caller's arrays and parameters meet the same rules -----------
# One line (a UserError) naming the parameter as the API names it (never a CLI option), and
# nothing written or changed. Regenerate the doc's API table with
# ``.venv/bin/python -c "from tests.test_bad_inputs import api_markdown_table as t; print(t())"``.


@dataclasses.dataclass(frozen=True)
class ApiCase:
    """``call(given)``: ``given`` holds "ckpt" (a tiny checkpoint), "causal" (a causal one), "tmp"
    (the case's folder) and "wav" (0.5 s of speech-like float32 samples)."""

    id: str
    call: Callable[[dict], object]
    message: str  # a fragment of the expected line


def _separate(given: dict, wav, **kwargs):
    from convtasnet_hailo import Separator

    with Separator.from_checkpoint(given["ckpt"], tile_w=16) as separator:
        return separator.separate(wav, **kwargs)


def _opened(given: dict, **kwargs):
    from convtasnet_hailo import Separator

    Separator.from_checkpoint(given["ckpt"], **kwargs).close()


def _write(given: dict, out: str, stem: str, transpose: bool = False, **kwargs):
    """Separates a file it read, then writes its sources as asked."""
    from convtasnet_hailo import Separator

    path = Path(_wav(given["tmp"], "mix_s1.wav", given["wav"]))
    with Separator.from_checkpoint(given["ckpt"], tile_w=16) as separator:
        sources = separator.separate_file(path)
        if out == "hard":
            os.link(path, given["tmp"] / "hard_s1.wav")
        target = {"here": given["tmp"], "file": path, "hard": given["tmp"]}.get(out, given["tmp"] / out)
        return separator.write_sources(sources.T if transpose else sources, target, stem, **kwargs)


def _closed(given: dict):
    from convtasnet_hailo import Separator

    separator = Separator.from_checkpoint(given["ckpt"], tile_w=16)
    separator.close()
    return separator.separate(given["wav"])


def _stream(given: dict, *steps: str, hop_ms: float = 8):
    """A causal stream driven through ``steps``: "push", "finish", "close", or a bad push."""
    from convtasnet_hailo import StreamingSeparator

    streamer = StreamingSeparator.from_checkpoint(given["causal"], hop_ms=hop_ms)
    hop, wav = streamer.hop, given["wav"]
    try:
        for step in steps:
            {
                "push": lambda: streamer.push(wav[:hop]),
                "finish": lambda: streamer.finish(wav[:3]),
                "close": streamer.close,
                "stereo": lambda: streamer.push(np.stack([wav[:hop], wav[:hop]], axis=1)),
                "partial": lambda: streamer.push(wav[: hop - 1]),
                "nan": lambda: streamer.push(_with(wav[:hop], 5, np.nan)),
                "whole-hop-last": lambda: streamer.finish(wav[:hop]),
            }[step]()
    finally:
        streamer.close()


API_CASES = [
    # arrays
    ApiCase("api_stereo_without_channel_axis", lambda g: _separate(g, np.stack([g["wav"]] * 2, 1)), "channel_axis=1"),
    ApiCase(
        "api_channel_axis_wrong",
        lambda g: _separate(g, np.stack([g["wav"]] * 2, 1), channel_axis=0),
        "4000 channels along channel_axis=0",
    ),
    ApiCase("api_channel_axis_not_an_axis", lambda g: _separate(g, g["wav"], channel_axis=2), "channel_axis=2: pass"),
    ApiCase("api_three_dimensions", lambda g: _separate(g, g["wav"][None, None]), "has shape (1, 1, 4000)"),
    ApiCase("api_a_single_value", lambda g: _separate(g, 0.5), "wav is a single value, not samples"),
    ApiCase("api_ragged_list", lambda g: _separate(g, [[0.1, 0.2], [0.3]]), "wav is not an array of samples"),
    ApiCase("api_int64_samples", lambda g: _separate(g, (g["wav"] * 1000).astype(np.int64)), "wav is int64"),
    ApiCase("api_uint8_samples", lambda g: _separate(g, (g["wav"] * 100 + 128).astype(np.uint8)), "wav is uint8"),
    ApiCase("api_complex_samples", lambda g: _separate(g, g["wav"].astype(np.complex64)), "wav is complex64"),
    ApiCase("api_nan_sample", lambda g: _separate(g, _with(g["wav"], 9, np.nan)), "wav holds NaN at sample 9"),
    ApiCase(
        "api_float64_beyond_float32",
        lambda g: _separate(g, _with(g["wav"], 9, 3e300)),
        "wav holds 3e+300 at sample 9, beyond +-32768",
    ),
    ApiCase("api_fewer_than_a_window", lambda g: _separate(g, g["wav"][:10]), "fewer than one encoder window (16)"),
    ApiCase("api_rate_zero", lambda g: _separate(g, g["wav"], rate=0), "rate=0 Hz: pass a rate from 1000"),
    ApiCase("api_rate_fractional", lambda g: _separate(g, g["wav"], rate=8000.5), "rate=8000.5: pass the samples'"),
    ApiCase("api_closed_separator", _closed, "this Separator is closed: open a new one"),
    # parameters
    ApiCase("api_tile_w_zero", lambda g: _opened(g, tile_w=0), "tile_w=0: pass a whole number"),
    ApiCase("api_segment_not_a_length", lambda g: _opened(g, segment="bogus"), "segment='bogus': use auto, off"),
    ApiCase(
        "api_segment_shorter_than_overlaps",
        lambda g: _opened(g, segment=3.0),
        "segment=3 s must be longer than twice overlap_seconds",
    ),
    ApiCase("api_overlap_nan", lambda g: _opened(g, overlap_seconds=float("nan")), "overlap_seconds=nan: pass"),
    ApiCase("api_backend_without_folder", lambda g: _opened(g, backend="hailo_runtime"), "need their folder"),
    # write_sources
    ApiCase("api_stem_escapes", lambda g: _write(g, "out", "../x"), "stem='../x': pass a file name stem"),
    ApiCase("api_stem_backslash", lambda g: _write(g, "out", "a\\b"), "stem='a\\\\b': pass a file name stem"),
    ApiCase("api_stem_newline", lambda g: _write(g, "out", "a\nb"), "holds a control character"),
    ApiCase("api_write_over_its_input", lambda g: _write(g, "here", "mix"), "an input this separator read"),
    ApiCase("api_write_over_a_hard_link", lambda g: _write(g, "hard", "hard"), "an input this separator read"),
    ApiCase("api_sources_transposed", lambda g: _write(g, "out", "t", transpose=True), "sources has shape (4000, 2)"),
    ApiCase("api_subtype_unknown", lambda g: _write(g, "out", "x", subtype="PCM_8"), "subtype='PCM_8': choose"),
    ApiCase("api_out_dir_a_file", lambda g: _write(g, "file", "x"), "is a file: pass a folder"),
    # streams
    ApiCase("api_stream_stereo_hop", lambda g: _stream(g, "stereo"), "samples has shape (64, 2): push one channel"),
    ApiCase("api_stream_part_of_a_hop", lambda g: _stream(g, "partial"), "push a whole number of hops (64 samples"),
    ApiCase("api_stream_nan_hop", lambda g: _stream(g, "push", "nan"), "samples holds NaN at sample 5"),
    ApiCase("api_stream_push_after_finish", lambda g: _stream(g, "finish", "push"), "push after finish()"),
    ApiCase("api_stream_samples_after_finish", lambda g: _stream(g, "finish", "finish"), "finish after finish()"),
    ApiCase("api_stream_push_after_close", lambda g: _stream(g, "close", "push"), "StreamingSeparator is closed"),
    ApiCase("api_stream_whole_hop_to_finish", lambda g: _stream(g, "whole-hop-last"), "takes the last fewer than"),
    ApiCase("api_stream_hop_ms_nan", lambda g: _stream(g, hop_ms=float("nan")), "hop_ms=nan: pass a hop length"),
    # score
    ApiCase(
        "api_score_lengths_differ",
        lambda g: convtasnet_hailo_score(np.stack([g["wav"]] * 2)[:, 1:], np.stack([g["wav"]] * 2), g["wav"]),
        "pass one length T for all three",
    ),
]


def convtasnet_hailo_score(estimates, references, mixture):
    from convtasnet_hailo import score

    return score(estimates, references, mixture)


def _api_given(tmp: Path, checkpoint: Path) -> dict:
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    causal = tmp / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), causal)
    return {"ckpt": checkpoint, "causal": causal, "tmp": tmp, "wav": speech_like(0.5, 8000, 9)}


def run_api_case(case: ApiCase, given: dict) -> str:
    """The one line ``case`` is refused with (an AssertionError when it is not refused)."""
    from convtasnet_hailo.errors import UserError

    before = {p: p.read_bytes() for p in given["tmp"].rglob("*") if p.is_file()}
    try:
        case.call(given)
    except UserError as exc:
        changed = [p for p, data in before.items() if not p.exists() or p.read_bytes() != data]
        assert not changed, f"{case.id} changed {changed}"
        return str(exc)
    raise AssertionError(f"{case.id} was not refused")


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.id)
def test_api_bad_input(case, tmp_path, tiny_checkpoint):
    line = run_api_case(case, _api_given(tmp_path, tiny_checkpoint))
    assert "\n" not in line and case.message in line, line
    assert " --" not in line and not line.startswith("--"), f"names a CLI option, not the parameter: {line}"


def test_the_api_catalogue_is_documented():
    assert len({c.id for c in API_CASES}) == len(API_CASES) >= 35
    doc = DOC.read_text()
    assert not [c.id for c in API_CASES if f"`{c.id}`" not in doc], "docs/bad_inputs.md lacks API cases"


def api_markdown_table() -> str:
    """The doc's API table with the real messages."""
    import tempfile

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    rows = ["| case | what the caller sees (a `UserError`) |", "|---|---|"]
    for case in API_CASES:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            save_model(random_model(TINY, seed=11), tmp / "ckpt.pth")
            line = run_api_case(case, _api_given(tmp, tmp / "ckpt.pth"))
            rows.append(f"| `{case.id}` | {line.replace(folder, '…').replace('|', chr(92) + '|')} |")
    return "\n".join(rows)
