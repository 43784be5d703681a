"""`noise` end to end on a tiny model, and its 16-bit advice reaching `compile --precision`."""

from __future__ import annotations

import json

from convtasnet_hailo.assets import DEMO_MIXTURE, DEMO_SOURCES
from convtasnet_hailo.cli import main
from tests.doubles import sdk as sdk_double

KEYS = {"final_output_si_snr_vs_float_db_all8", "final_output_si_snr_vs_float_db_advised", "n_layers_16bit",
        "n_layers", "per_layer_sqnr_db", "per_stage_sqnr_db_all8", "si_snri_db", "rescale_feasibility",
        "layers_16bit", "target_reached", "per_layer_flagged_below_db", "clipped_fraction_by_layer"}


def test_noise_reports_advises_and_compile_uses_the_advice(tmp_path, monkeypatch, capsys):
    out = tmp_path / "noise"
    assert main(["noise", "--random-preset", "tiny", "--tile-w", "16", "--audio", str(DEMO_MIXTURE),
                 "--s1", str(DEMO_SOURCES[0]), "--s2", str(DEMO_SOURCES[1]), "--calib-count", "256",
                 "--target-db", "30", "--out", str(out)]) == 0
    record = json.loads((out / "noise_report.json").read_text())
    assert KEYS <= set(record) and record["n_layers"] == len(record["per_layer_sqnr_db"]) == 47
    assert record["final_output_si_snr_vs_float_db_advised"] >= record["final_output_si_snr_vs_float_db_all8"]
    assert record["target_reached"] == (record["final_output_si_snr_vs_float_db_advised"] >= 30)
    assert set(record["si_snri_db"]) == {"float", "all8", "advised"}
    assert (out / "noise_layers.png").stat().st_size > 5000
    lines = "".join(p.read_text() for p in (out / "model_scripts").glob("*.alls"))
    assert lines.count("precision_mode=a16_w16") == record["n_layers_16bit"] > 0
    assert "noise: all-8" in capsys.readouterr().out

    sdk_double.install(monkeypatch)
    export = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4", "--precision",
                 str(out / "model_scripts")]) == 0
    stage = record["layers_16bit"][0].split("/")[0]
    job = json.loads(next((export / "jobs").glob(f"{stage}_t16_*.json")).read_text())
    assert f"quantization_param({record['layers_16bit'][0]}, precision_mode=a16_w16)" in job["script_text"]
    # the double refuses a layer name the parsed model lacks: compiling proves the names were mapped
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--precision", str(tmp_path)]) == 2
    assert "has no" in capsys.readouterr().err
