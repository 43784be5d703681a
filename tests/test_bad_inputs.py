"""The bad-input catalogue (docs/bad_inputs.md): every case a user can cause gets one line on
stderr naming the problem and the fix, a non-zero exit and no traceback; the inputs that are
accepted with a note say so. Each case builds its own files in tmp_path.

Regenerate the doc's table from the real messages with
``.venv/bin/python -m tests.test_bad_inputs > docs/bad_inputs_table.md`` (see the doc).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

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


SEP = ("separate", "--model", "{ckpt}", "--out", "{tmp}/out")
CASES = [
    # separate: the audio
    Case("nan_samples", "separate", ("{bad}",) + SEP[1:], "holds NaN/Inf samples, the first at 0.250 s (sample 2000)",
         setup=_nan),
    Case("inf_samples", "separate", ("{bad}",) + SEP[1:], "holds NaN/Inf samples, the first at 0.013 s (sample 100)",
         setup=_inf),
    Case("missing_audio", "separate", ("{tmp}/nope.wav",) + SEP[1:], "does not exist"),
    Case("folder_as_audio", "separate", ("{bad}",) + SEP[1:], "is a folder; pass an audio file", setup=_folder),
    Case("corrupt_audio", "separate", ("{bad}",) + SEP[1:], "as audio",
         setup=_bytes("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")),
    Case("empty_audio", "separate", ("{bad}",) + SEP[1:], "holds no samples",
         setup=lambda tmp: {"bad": _wav(tmp, "empty.wav", np.zeros(0, np.float32))}),
    Case("three_channels", "separate", ("{bad}",) + SEP[1:], "has 3 channels",
         setup=lambda tmp: {"bad": _wav(tmp, "3ch.wav", np.tile(speech_like(0.5, 8000, 1)[:, None], (1, 3)))}),
    Case("silent_audio", "separate", ("{bad}",) + SEP[1:], "is silent",
         setup=lambda tmp: {"bad": _wav(tmp, "silent.wav", np.zeros(4000, np.float32))}),
    # separate: the model
    Case("truncated_checkpoint", "separate", ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
         "cannot read checkpoint", setup=_truncated_checkpoint),
    Case("zero_byte_checkpoint", "separate", ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
         "cannot read checkpoint", setup=_bytes("empty.pth", b"")),
    Case("wav_as_checkpoint", "separate", ("{mix}", "--model", "{mix}", "--out", "{tmp}/out"),
         "cannot read checkpoint"),
    Case("bare_state_dict", "separate", ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
         "is not an Asteroid model file", setup=_package(lambda p: p["state_dict"])),
    Case("other_architecture", "separate", ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
         "only ConvTasNet is supported", setup=_package(_other_architecture)),
    Case("stft_filterbank", "separate", ("{mix}", "--model", "{bad}", "--out", "{tmp}/out"),
         "unsupported fb_name='stft'", setup=_package(_stft_filterbank)),
    Case("folder_as_checkpoint", "separate", ("{mix}", "--model", "{tmp}", "--out", "{tmp}/out"),
         "is a directory; pass the checkpoint file"),
    # separate: the outputs and options
    Case("out_is_a_file", "separate", ("{mix}", "--model", "{ckpt}", "--out", "{bad}"),
         "is an existing file; pass a folder", setup=_file),
    Case("out_unwritable", "separate", ("{mix}", "--model", "{ckpt}", "--out", "{bad}/out"),
         "cannot create --out", setup=_file),
    Case("same_stem_twice", "separate", ("{a}", "{b}", "--model", "{ckpt}", "--out", "{tmp}/out"),
         "would both write mix_s1.wav", setup=_same_stem),
    Case("bad_segment", "separate", ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--segment", "abc"),
         "use auto, off or a length in seconds"),
    Case("tile_width_unserved", "separate", ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out", "--tile-w", "70000"),
         "is not served by the plan"),
    Case("export_dir_without_onnxruntime", "separate", ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out",
                                                        "--export-dir", "{tmp}"), "--export-dir is read by"),
    # forward
    Case("one_source_only", "forward", ("--mix", "{mix}", "--s1", "{mix}", "--model", "{ckpt}",
                                        "--runs-dir", "{tmp}/runs"), "the model has 2 source(s): pass --s1 and --s2, or none"),
    Case("source_length_mismatch", "forward", ("--mix", "{mix}", "--s1", "{s1}", "--s2", "{s2}", "--model", "{ckpt}",
                                               "--runs-dir", "{tmp}/runs"), "pass the mixture's own sources",
         setup=_short_source),
    # enhance
    Case("enhance_with_a_separation_model", "enhance", ("{mix}", "--model", "{ckpt}", "--out", "{tmp}/out"),
         "`enhance` is for one-output (n_src=1) models"),
    # import-onnx
    Case("import_onnx_not_onnx", "import-onnx", ("{mix}", "--out", "{tmp}/x.pth"), "is not a readable ONNX file"),
    Case("import_onnx_out_is_a_folder", "import-onnx", ("{mix}", "--out", "{tmp}"), "is a folder"),
    # evaluate
    Case("metadata_missing", "evaluate", ("--metadata", "{tmp}/none.csv", "--model", "{ckpt}"), "does not exist"),
    Case("metadata_paths_missing", "evaluate", ("--metadata", "{bad}", "--model", "{ckpt}", "--runs-dir",
                                                "{tmp}/runs"), "file(s) that do not exist",
         setup=_metadata("missing_paths")),
    Case("metadata_columns_missing", "evaluate", ("--metadata", "{bad}", "--model", "{ckpt}"), "lacks column(s)",
         setup=_metadata("no_columns")),
    Case("metadata_empty", "evaluate", ("--metadata", "{bad}", "--model", "{ckpt}"), "lists no mixtures",
         setup=_metadata("no_rows")),
    # parity
    Case("length_too_short", "parity", ("full-chain", "--random-preset", "tiny", "--length", "3",
                                        "--runs-dir", "{tmp}/runs"), "shorter than one encoder window"),
    Case("length_and_seconds", "parity", ("full-chain", "--random-preset", "tiny", "--length", "300", "--seconds", "1",
                                          "--runs-dir", "{tmp}/runs"), "pass one of them"),
    Case("unknown_backend", "parity", ("masker", "--random-preset", "tiny", "--backend", "nope",
                                       "--runs-dir", "{tmp}/runs"), "unknown backend 'nope'"),
    Case("hef_dir_without_hailo", "parity", ("masker", "--random-preset", "tiny", "--hef-dir", "{tmp}"),
         "--hef-dir is read by"),
    Case("noise_dir_with_float_backend", "parity", ("masker", "--random-preset", "tiny", "--noise-dir", "{tmp}"),
         "--noise-dir is read by quantized backends"),
    Case("hailo_quant_without_noise_dir", "parity", ("masker", "--random-preset", "tiny", "--backend",
                                                     "hailo_quant"), "needs --noise-dir"),
    Case("noise_dir_not_a_noise_folder", "separate", ("{mix}", "--model", "{ckpt}", "--backend", "hailo_quant",
                                                      "--noise-dir", "{tmp}", "--out", "{tmp}/out"),
         "no noise_report.json"),
    Case("parity_truncated_checkpoint", "parity", ("masker", "--model", "{bad}", "--runs-dir", "{tmp}/runs"),
         "cannot read checkpoint", setup=_truncated_checkpoint),
    Case("export_of_other_model", "parity", ("masker", "--random-preset", "tiny", "--seed", "5", "--backend",
                                             "onnxruntime", "--export-dir", "{export}", "--tile-w", "256",
                                             "--length", "40", "--runs-dir", "{tmp}/runs"),
         "is not this model's stage", setup=_export("--path", "masker")),
    Case("export_of_other_tile_width", "parity", ("masker", "--random-preset", "tiny", "--backend", "onnxruntime",
                                                  "--export-dir", "{export}", "--tile-w", "64", "--length", "40",
                                                  "--runs-dir", "{tmp}/runs"),
         "no export for tile_w 64", setup=_export("--path", "masker")),
    # export
    Case("monolithic_without_length", "export", ("--random-preset", "tiny", "--monolithic", "--out", "{tmp}/x"),
         "--monolithic needs --length"),
    Case("export_out_is_a_file", "export", ("--random-preset", "tiny", "--out", "{bad}"),
         "is an existing file; pass a folder", setup=_file),
    # check
    Case("interrupted_export", "check", ("{export}",), "no manifest.json in", setup=_export(edit=_no_manifest)),
    Case("check_a_file", "check", ("{bad}",), "is a file; pass the export folder", setup=_file),
    Case("edited_stage_file", "check", ("{export}",), "was changed after export", setup=_export(edit=_edited_stage)),
    Case("corrupt_manifest", "check", ("{export}",), "is not a readable convtasnet-hailo manifest",
         setup=_export(edit=_corrupt_manifest)),
    # compile and grid
    Case("compile_without_sdk", "compile", ("--export-dir", "{tmp}"), "hailo_sdk_client"),
    Case("compile_missing_export", "compile", ("--export-dir", "{tmp}/none", "--dry-run"), "is not a folder"),
    Case("compile_monolithic_export", "compile", ("--export-dir", "{export}", "--dry-run"), "holds a monolithic export",
         setup=_export("--monolithic", "--length", "400")),
    Case("grid_resume_not_a_grid", "grid", ("decoder", "--random-preset", "tiny", "--dry-run", "--resume", "{run}"),
         "is not the run folder of a grid", setup=_not_a_grid),
    Case("grid_jobs_zero", "grid", ("decoder", "--random-preset", "tiny", "--dry-run", "--jobs", "0"),
         "--jobs 0: use 1 or more"),
    Case("grid_ray_with_jobs", "grid", ("decoder", "--random-preset", "tiny", "--dry-run", "--executor", "ray", "--jobs",
                                        "4"), "--jobs is for --executor local"),
    Case("compile_ray_address_local", "compile", ("--export-dir", "{tmp}", "--dry-run", "--ray-address", "h:6379"),
         "--ray-address needs --executor ray"),
    Case("evaluate_local_jobs", "evaluate", ("--metadata", "{tmp}/none.csv", "--model", "{ckpt}", "--jobs", "2"),
         "runs one mixture at a time"),
    Case("gln_in_stages_cln_model", "plan", ("--random-preset", "full-8k-causal", "--gln-in-stages"),
         "this model uses cLN: drop --gln-in-stages"),
    Case("gln_in_stages_with_blocks", "plan", ("--random-preset", "tiny", "--gln-in-stages", "--block-chan", "8"),
         "cannot be combined with --block-chan"),
    Case("stream_float_plan", "stream", ("{mix}", "--random-preset", "full-8k-causal", "--halo-edges", "--out",
                                         "{tmp}/s"), "streaming runs stages hop by hop"),
    Case("compile_gln_in_stages_export", "compile", ("--export-dir", "{export}", "--dry-run"),
         "this plan was built with --gln-in-stages and --halo-edges",
         setup=_export("--gln-in-stages", "--halo-edges")),
    Case("bench_backend_always_timed", "bench", ("--random-preset", "tiny", "--seconds", "0.5", "--backend",
                                                 "onnxruntime"), "bench always times torch_proxy and onnxruntime"),
    Case("bench_hailo_without_hefs", "bench", ("--random-preset", "tiny", "--seconds", "0.5", "--backend",
                                               "hailo_runtime"), "pass --hef-dir DIR"),
    # accepted, and said
    Case("float_beyond_one", "separate", ("{bad}",) + SEP[1:], "instead of clipping", exit=0, setup=_loud),
    Case("pcm_8bit", "separate", ("{bad}",) + SEP[1:], "read PCM_U8 samples as float32", exit=0, stream="out",
         setup=_format("u8.wav", 8000, "PCM_U8")),
    Case("pcm_24bit_48k", "separate", ("{bad}",) + SEP[1:], "read PCM_24 samples as float32", exit=0, stream="out",
         setup=_format("p24.wav", 48000, "PCM_24")),
    Case("pcm_32bit_44k1", "separate", ("{bad}",) + SEP[1:], "resampled 44100 Hz -> 8000 Hz", exit=0, stream="out",
         setup=_format("p32.wav", 44100, "PCM_32")),
]


def run_case(case: Case, tmp: Path, checkpoint: Path, capsys) -> tuple[int, str, str]:
    import shutil

    tmp = tmp / "case"
    tmp.mkdir()
    shutil.copy(checkpoint, tmp / "tiny.pth")
    values = {"ckpt": str(tmp / "tiny.pth"), "mix": _wav(tmp, "mix.wav", speech_like(0.5, 8000, 9)), "tmp": str(tmp)}
    values.update(case.setup(tmp))
    capsys.readouterr()
    code = main([case.command] + [a.format(**values) for a in case.argv])
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
    assert len(errors) >= 25 and len({c.id for c in CASES}) == len(CASES)
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
    assert main(["separate", values["a"], values["b"], "--model", str(tiny_checkpoint), "--out",
                 str(tmp_path / "out")]) == 2
    assert (tmp_path / "out" / "mix_s1.wav").read_bytes() == b"earlier result"


def _markdown_table() -> str:
    """Runs every case and prints the doc's table with the real messages."""
    import tempfile

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    import contextlib
    import io

    rows = ["| case | command | exit | what the user sees |", "|---|---|---|---|"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            save_model(random_model(TINY, seed=11), tmp / "ckpt.pth")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run_case(case, tmp, tmp / "ckpt.pth", _NoCapture())[0]
            text = err.getvalue().strip() if case.exit or case.stream == "err" else \
                next(line for line in out.getvalue().splitlines() if case.message in line)
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
