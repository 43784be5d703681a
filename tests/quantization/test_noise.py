"""`noise` end to end on a tiny model, and its 16-bit advice reaching `compile --precision`."""

from __future__ import annotations

import json

from convtasnet_hailo.assets import DEMO_MIXTURE, DEMO_SOURCES
from convtasnet_hailo.cli import main
from tests.doubles import sdk as sdk_double

KEYS = {
    "final_output_si_snr_vs_float_db_all8",
    "final_output_si_snr_vs_float_db_advised",
    "n_layers_16bit",
    "n_layers",
    "per_layer_sqnr_db",
    "per_stage_sqnr_db_all8",
    "si_snri_db",
    "rescale_feasibility",
    "layers_16bit",
    "target_reached",
    "per_layer_flagged_below_db",
    "clipped_fraction_by_layer",
    "weight_granularity",
    "optimizations",
    "scheme",
    "assumption_effects_all8",
    "precision_modes",
    "predicted_device_rtf",
    "coverage_outside_calibrated_range_by_layer",
    "calibration_set",
    "advice",
}


def test_noise_reports_advises_and_compile_uses_the_advice(tmp_path, monkeypatch, capsys):
    out = tmp_path / "noise"
    assert (
        main(
            [
                "noise",
                "--random-preset",
                "tiny",
                "--tile-w",
                "16",
                "--audio",
                str(DEMO_MIXTURE),
                "--s1",
                str(DEMO_SOURCES[0]),
                "--s2",
                str(DEMO_SOURCES[1]),
                "--calib-count",
                "256",
                "--target-db",
                "22",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "noise_report.json").read_text())
    assert KEYS <= set(record) and record["n_layers"] == len(record["per_layer_sqnr_db"]) == 47
    assert record["final_output_si_snr_vs_float_db_advised"] >= record["final_output_si_snr_vs_float_db_all8"]
    assert record["target_reached"] == (record["final_output_si_snr_vs_float_db_advised"] >= 22)
    assert set(record["si_snri_db"]) == {"float", "all8", "advised", "all16"}
    # the calibration never saw the evaluation audio (the shipped mixture): the other shipped recording
    assert record["calibration_set"]["recordings"] == 1 and "enhance" in record["calibration_set"]["files"][0]
    rtf = record["predicted_device_rtf"]
    assert rtf["all8"]["rtf"] < rtf["advised"]["rtf"] <= rtf["all16"]["rtf"] and rtf["all16"]["a16_mac_share"] == 1.0
    assert (out / "noise_layers.png").stat().st_size > 5000
    lines = "".join(p.read_text() for p in (out / "model_scripts").glob("*.alls"))
    assert lines.count("precision_mode=a16_w16") == record["n_layers_16bit"] > 0
    assert lines.count("precision_mode=") == record["n_layers_not_a8_w8"]
    # per-layer weights by default, both figures reported; each optimization as the scripts say it
    assert record["weight_granularity"] == "per_layer"
    assert {"chosen", "weights_per_channel", "bias_correction_off", "equalization"} <= set(
        record["assumption_effects_all8"]
    )
    stages = len(list((out / "model_scripts").glob("*.alls")))
    assert record["optimizations"]["equalization"]["enabled"] and record["optimizations"]["bias_correction"]["enabled"]
    assert lines.count("pre_quantization_optimization(equalization, policy=enabled)") == stages
    assert lines.count("post_quantization_optimization(bias_correction, policy=enabled)") == stages
    assert lines.count("post_quantization_optimization(finetune, policy=disabled)") == stages
    assert "noise: all-8" in capsys.readouterr().out

    sdk_double.install(monkeypatch)
    export = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(export)]) == 0
    assert (
        main(["compile", "--export-dir", str(export), "--calib-count", "4", "--precision", str(out / "model_scripts")])
        == 0
    )
    stage = record["layers_16bit"][0].split("/")[0]
    job = json.loads(next((export / "hailo" / "hailo8" / "jobs").glob(f"{stage}_t16_*.json")).read_text())
    assert f"quantization_param({record['layers_16bit'][0]}, precision_mode=a16_w16)" in job["script_text"]
    # the double refuses a layer name the parsed model lacks: compiling proves the names were mapped
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--precision", str(tmp_path)]) == 2
    assert "has no" in capsys.readouterr().err


def test_noise_cross_checks_with_onnxruntime_and_parity_compares_with_the_emulation(tmp_path, monkeypatch, capsys):
    """The ONNX Runtime QDQ cross-check sits beside the emulator per stage; `parity --noise-dir`
    runs hailo_quant itself, and compares a quantized backend (the SDK double) with it."""
    out = tmp_path / "noise"
    assert (
        main(
            [
                "noise",
                "--random-preset",
                "tiny",
                "--tile-w",
                "16",
                "--audio",
                str(DEMO_MIXTURE),
                "--calib",
                *map(str, DEMO_SOURCES),
                "--calib-count",
                "1024",
                "--target-db",
                "25",
                "--out",
                str(out),
            ]
        )
        == 0
    )  # every tile (fewer than 1024): ORT's MinMax ranges swing with a draw
    record = json.loads((out / "noise_report.json").read_text())
    cross = record["onnxruntime_qdq_cross_check"]
    stages = set(record["per_stage_sqnr_db_all8"])
    assert {row["stage"] for row in cross["per_stage"]} == stages
    for row in cross["per_stage"]:
        assert (
            5 < row["onnxruntime_qdq_db"] < 80
            and row["difference_db"] == row["emulator_db"] - row["onnxruntime_qdq_db"]
        )
    # gLN stages hold Conv, LeakyRelu (the single-slope PReLU) and Add only: ONNX Runtime quantizes them all
    assert all(row["ops_onnxruntime_keeps_float"] == [] for row in cross["per_stage"])
    assert cross["stages_disagreeing"] == [r["stage"] for r in cross["per_stage"] if abs(r["difference_db"]) > 3]

    runs = tmp_path / "runs"
    common = ["--random-preset", "tiny", "--tile-w", "16", "--seconds", "0.5", "--runs-dir", str(runs)]
    assert main(["parity", "full-chain", "--backend", "hailo_quant", "--noise-dir", str(out), *common]) == 0
    quantized = json.loads(next(runs.glob("*/*.json")).read_text())
    assert quantized["backend"] == "hailo_quant" and quantized["tolerance"] == "sqnr"
    assert quantized["final_output_si_snr_vs_reference_db"] > 15

    sdk_double.install(monkeypatch)
    export = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    runs2 = tmp_path / "runs2"
    code = main(
        [
            "parity",
            "full-chain",
            "--backend",
            "hailo_emulator",
            "--hef-dir",
            str(export / "hailo" / "hailo8"),
            "--noise-dir",
            str(out),
            *common[:-1],
            str(runs2),
        ]
    )
    case = json.loads(next(runs2.glob("*/*.json")).read_text())
    suffix = "_sqnr_vs_emulation_db"
    per_stage = {k[: -len(suffix)]: v for k, v in case.items() if k.endswith(suffix)}
    assert {"final_output", "tcn0_depth", "mask_output"} <= set(per_stage)
    contract = [v for name, v in per_stage.items() if name not in case["diagnostic_tensors"]]
    assert case["min_sqnr_vs_emulation_db"] == min(contract)
    assert case["matches_emulation"] == (case["min_sqnr_vs_emulation_db"] >= 30)
    assert code == (0 if case["all_close"] and case["matches_emulation"] else 1)

    capsys.readouterr()
    assert main(["parity", "full-chain", "--backend", "torch_proxy", "--noise-dir", str(out), *common]) == 2
    assert "--noise-dir is read by quantized backends" in capsys.readouterr().err
    assert main(["parity", "full-chain", "--backend", "hailo_quant", "--noise-dir", str(tmp_path), *common]) == 2
    assert "no noise_report.json" in capsys.readouterr().err


def test_ops_left_in_float_names_what_onnxruntime_cannot_quantize(tmp_path):
    """A per-frame norm's Sqrt and Div stay in float under ONNX Runtime's quantizer; Conv and
    LeakyRelu do not (the report's ``ops_onnxruntime_keeps_float`` column)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from convtasnet_hailo.quantization.ort_crosscheck import ops_left_in_float

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.25),
        helper.make_node("Sqrt", ["l"], ["s"]),
        helper.make_node("Div", ["l", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 4])],
        [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")],
    )
    onnx.save(helper.make_model(graph), tmp_path / "stage.onnx")
    assert ops_left_in_float(tmp_path / "stage.onnx") == ["Div", "Sqrt"]
