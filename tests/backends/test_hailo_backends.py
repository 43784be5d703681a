"""hailo_runtime and hailo_emulator against the TEST DOUBLES of hailo_platform / hailo_sdk_client
(which compute each stage with its ONNX in onnxruntime)."""

import json

import numpy as np
import pytest

from convtasnet_hailo.backends.hailort_api import dequantize, quantize
from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.hailo.layout import nchw_to_nhwc, nhwc_to_nchw
from convtasnet_hailo.parity.compare import diff_tensor
from convtasnet_hailo.plan import build_plan
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import speech_like
from tests.doubles import runtime as runtime_double


def _run(model, backend, tile_w=16, seconds=0.6):
    outputs = {}
    StitchedExecutor(build_plan(model), backend, tile_w).run(
        {"wav": speech_like(seconds, 8000, 1)[None, None]}, lambda n, t: outputs.__setitem__(n, t)
    )
    return outputs


def test_layout_and_quantization_helpers():
    x = np.random.default_rng(0).standard_normal((3, 5, 1, 7)).astype(np.float32)
    assert nchw_to_nhwc(x).shape == (3, 1, 7, 5)
    np.testing.assert_array_equal(nhwc_to_nchw(nchw_to_nhwc(x)), x)
    q = quantize(x, 2**-8, 32768, np.uint16)
    assert q.dtype == np.uint16 and np.abs(dequantize(q, 2**-8, 32768) - x).max() <= 2**-9 + 1e-6
    assert quantize(np.array([1e9, -1e9]), 1.0, 0, np.uint8).tolist() == [255, 0]


def test_runtime_equals_onnxruntime_with_one_device(compiled, monkeypatch):
    model, export, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=3)
    runtime = _run(model, backend)
    reference = _run(model, load_backend("onnxruntime", export_dir=export))
    for name in ("mask_output", "final_output", "tcn5_depth"):
        assert diff_tensor(name, runtime[name], reference[name]).max_abs <= 1e-5
    assert len(build_plan(model).stages) == 15 and backend.stats()["hefs"] == 2
    assert hailo.STATS["vdevices"] == 1 and hailo.STATS["configured"] == 2
    _run(model, backend)  # a second utterance reuses the device and the configured HEFs
    assert hailo.STATS["vdevices"] == 1 and hailo.STATS["configured"] == 2
    assert backend.device_calls["bottleneck__tcn0_in"] == 2 * 13  # 38 tiles in batches of 3, twice
    backend.close()


def test_batches_follow_batch_size(compiled, monkeypatch):
    model, _, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    _run(model, backend, seconds=0.6)  # 600 frames / 16 = 38 tiles per stage; 76 for the 2-source stages
    assert (
        backend.device_calls["bottleneck__tcn0_in"] == 10
        and backend.device_calls["source_projector__decoder_pre"] == 19
    )
    assert hailo.STATS["frames"] == sum(
        38 * (2 if s == "source_projector__decoder_pre" else 1) for s in backend.device_calls
    )


def test_quantized_io_converts_on_the_host(compiled, monkeypatch):
    """The HEF's UINT16 I/O (scale 2**-8, zero point 32768 in the double): inputs quantized and
    outputs dequantized on the host; one stage stays within the quantization step."""
    model, export, hef_dir = compiled
    runtime_double.install(monkeypatch, io="quantized")
    plan = build_plan(model)
    quantized = load_backend("hailo_runtime", hef_dir=hef_dir, io_format="quantized")
    float_ref = load_backend("onnxruntime", export_dir=export)
    for backend in (quantized, float_ref):
        backend.prepare(plan, 16)
    stage = plan.stage("bottleneck__tcn0_in")
    x = np.round(np.random.default_rng(0).standard_normal((5, 16, 1, 16)) * 2 * 256) / 256  # on the input grid
    out = quantized.run_stage(stage, {"bottleneck_norm": x.astype(np.float32)})["tcn0_in"]
    ref = float_ref.run_stage(stage, {"bottleneck_norm": x.astype(np.float32)})["tcn0_in"]
    assert np.abs(out - ref).max() <= 2**-9 + 1e-6 and not np.array_equal(out, ref)


def test_quantized_io_refuses_a_stream_without_one_scale(compiled, monkeypatch):
    """A HEF with per-feature output scales reports quant_info as zeros (HailoRT 4.23's own
    library, docs/measured/hailort_build.md): host-side dequantization would give zeros, so the
    stream is refused in one line naming the fix."""
    model, _, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch, io="quantized")
    monkeypatch.setattr(hailo, "QP_SCALE", 0.0)
    plan = build_plan(model)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, io_format="quantized")
    backend.prepare(plan, 16)
    stage = plan.stage("bottleneck__tcn0_in")
    with pytest.raises(UserError, match=r"has no single scale .*use --io-format float32"):
        backend.run_stage(stage, {"bottleneck_norm": np.zeros((1, 16, 1, 16), np.float32)})
    backend.close()


def test_one_hef_per_stage_runs_the_same(compiled_per_stage, monkeypatch):
    model, export, hef_dir = compiled_per_stage
    hailo = runtime_double.install(monkeypatch)
    runtime = _run(model, load_backend("hailo_runtime", hef_dir=hef_dir))
    reference = _run(model, load_backend("onnxruntime", export_dir=export))
    assert diff_tensor("final_output", runtime["final_output"], reference["final_output"]).max_abs <= 1e-5
    assert hailo.STATS["configured"] == 15


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d, m: runtime_double.install(m, devices=()), "no usable Hailo device"),
        (
            lambda d, m: runtime_double.install(m, arch="hailo8l"),
            "this device cannot run .* a Hailo-8L only hailo8l ones",
        ),
        (
            lambda d, m: (runtime_double.install(m), next(d.glob("pack1_*.hef")).unlink()),
            "pack pack1: its HEF .* is missing",
        ),
        (lambda d, m: (runtime_double.install(m), (d / "compile_manifest.json").unlink()), "stage encoder has no HEF"),
    ],
)
def test_clear_failures(compiled, monkeypatch, setup, message):
    model, _, hef_dir = compiled
    setup(hef_dir, monkeypatch)
    with pytest.raises(UserError, match=message):
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 16)


def test_changed_hef_is_detected_by_hash(compiled, monkeypatch):
    model, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    with open(next(hef_dir.glob("pack0_*.hef")), "ab") as handle:
        handle.write(b" ")
    with pytest.raises(UserError, match="pack pack0: .* changed since it was compiled"):
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 16)


def test_device_stats_reach_the_parity_json(compiled, monkeypatch, tmp_path, tiny_checkpoint):
    _, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    assert (
        main(
            [
                "parity",
                "full-chain",
                "--model",
                str(tiny_checkpoint),
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hef_dir),
                "--tile-w",
                "16",
                "--length",
                "900",
                "--runs-dir",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    record = json.loads(next(next((tmp_path / "r").iterdir()).glob("*.json")).read_text())
    calls, seconds = record["backend_stats"]["device_calls"], record["backend_stats"]["device_seconds"]
    assert calls["bottleneck__tcn0_in"] == 1 and "bottleneck__tcn0_in" in seconds
    assert record["tolerance"] == "sqnr"


def test_hefs_for_another_tile_width_are_rejected(compiled, monkeypatch):
    model, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    with pytest.raises(UserError, match="stage encoder: .* the plan at tile_w 32 needs"):
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 32)


def test_device_timeout_names_the_stage(compiled, monkeypatch):
    model, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    monkeypatch.setenv("HAILO_DOUBLE_TIMEOUT_STAGE", "tcn2_depth")
    with pytest.raises(UserError, match="stage tcn2_depth: the device run failed .*HailoRTTimeout.*timeout was 300 ms"):
        _run(model, load_backend("hailo_runtime", hef_dir=hef_dir, timeout_ms=300))


def test_emulator_contexts(compiled, monkeypatch):
    model, export, hef_dir = compiled
    reference = _run(model, load_backend("onnxruntime", export_dir=export))
    exact = _run(model, load_backend("hailo_emulator", hef_dir=hef_dir, context="fp_optimized"))
    assert diff_tensor("final_output", exact["final_output"], reference["final_output"]).max_abs <= 1e-5
    quantized = _run(model, load_backend("hailo_emulator", hef_dir=hef_dir, context="quantized"))
    d = diff_tensor("mask_output", quantized["mask_output"], reference["mask_output"])
    assert d.max_abs > 1e-5 and d.sqnr_db > 20


def test_quantized_parity_reports_sqnr_and_si_snr(compiled, monkeypatch, tmp_path, tiny_checkpoint):
    _, _, hef_dir = compiled
    assert (
        main(
            [
                "parity",
                "full-chain",
                "--model",
                str(tiny_checkpoint),
                "--backend",
                "hailo_emulator",
                "--hef-dir",
                str(hef_dir),
                "--tile-w",
                "16",
                "--length",
                "900",
                "--runs-dir",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "r").iterdir()
    record = json.loads(next(run_dir.glob("*.json")).read_text())
    assert record["tolerance"] == "sqnr" and record["min_sqnr_db"] == 20.0 and record["all_close"] is True
    assert record["mask_output_sqnr_db"] > 20 and record["final_output_si_snr_vs_reference_db"] > 10


def test_missing_runtime_is_one_line_and_nonzero(tmp_path, capsys):
    assert (
        main(
            [
                "parity",
                "masker",
                "--random-preset",
                "tiny",
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(tmp_path),
                "--runs-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "hailo_platform is not importable" in err and "hailo-all" in err and err.count("\n") == 1


def test_doctor_finds_the_device(monkeypatch, capsys):
    runtime_double.install(monkeypatch)
    main(["doctor"])
    assert "[ok  ] Hailo device: 0000:01:00.0" in capsys.readouterr().out


def test_a_compile_manifest_never_points_outside_its_folder(compiled, monkeypatch, tmp_path):
    model, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    manifest_path = hef_dir / "compile_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    outside = tmp_path / "elsewhere.hef"
    outside.write_bytes(next(hef_dir.glob("pack0_*.hef")).read_bytes())
    name = next(iter(manifest["packs"]))
    manifest["packs"][name]["artifacts"]["hef_path"] = str(outside)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="lies outside .*; a manifest there may only name files inside it"):
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 16)


@pytest.mark.parametrize("packing", [[], ["--execution-mode", "activated_packs"]], ids=["per_stage", "packs"])
def test_a_compile_manifest_names_its_files_relative_to_its_folder(tmp_path, monkeypatch, tiny_checkpoint, packing):
    """The README's device path types relative folders: the compile manifest names its files
    relative to its own folder (which the reader resolves them against), not to the working
    directory, so `--export-dir EXPORT` then `--hef-dir EXPORT/hailo/hailo8` finds every HEF, and
    the folder can be copied to the device as a whole. (Moving it is not tried here: the SDK
    double's HEFs point at their ONNX files, real HEFs carry the network.)"""
    from tests.doubles import sdk as sdk_double

    sdk_double.install(monkeypatch)
    runtime_double.install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", str(tiny_checkpoint), "--tile-w", "16", "--out", "EXPORT", *packing]) == 0
    assert main(["compile", "--export-dir", "EXPORT", "--calib-count", "4"]) == 0
    manifest = json.loads((tmp_path / "EXPORT/hailo/hailo8/compile_manifest.json").read_text())
    recorded = [a["hef_path"] for a in manifest["stages"].values() if a.get("hef_path")] + [
        p["artifacts"]["hef_path"] for p in manifest["packs"].values()
    ]
    assert recorded and all(not path.startswith(("EXPORT", "/")) for path in recorded)
    assert all((tmp_path / "EXPORT/hailo/hailo8" / path).is_file() for path in recorded)
    assert (
        main(
            [
                "parity",
                "full-chain",
                "--model",
                str(tiny_checkpoint),
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                "EXPORT/hailo/hailo8",
                "--tile-w",
                "16",
                "--length",
                "900",
                "--runs-dir",
                "runs",
            ]
        )
        == 0
    )
