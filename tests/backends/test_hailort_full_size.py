"""The full-size fused plan (random preset full-8k, 10 s) through hailo_runtime on the HailoRT
TEST DOUBLE, as a user would run it: export -> compile (the SDK double) -> parity, in both
execution modes and on Hailo-10H (HailoRT 5, InferModel). Equal to onnxruntime under the
quantized backends' rule (the doubles compute in float, so the SQNR is far above the bound), and
the run JSON names the mode and counts configurations and activations."""

import json

import pytest

from convtasnet_hailo.cli import main
from tests.doubles import runtime as runtime_double
from tests.doubles import sdk as sdk_double

FULL = ["--random-preset", "full-8k", "--tile-w", "256"]


def _compiled(tmp_path, monkeypatch, name, export_args, hw_arch="hailo8"):
    sdk_double.install(monkeypatch, dfc="5.1.0" if hw_arch == "hailo10h" else "3.33.1")
    runtime_double.install(monkeypatch, arch=hw_arch)  # compile reads each HEF's contexts with HailoRT's HEF reader
    export = tmp_path / name
    assert main(["export", *FULL, "--out", str(export), *export_args]) == 0
    code = main(["compile", "--export-dir", str(export), "--calib-count", "4", "--hw-arch", hw_arch])
    return code, export / "hailo" / hw_arch


def _parity(tmp_path, monkeypatch, hef_dir, name, arch="hailo8") -> dict:
    runtime_double.install(monkeypatch, arch=arch)
    runs = tmp_path / f"runs_{name}"
    assert (
        main(
            [
                "parity",
                "full-chain",
                *FULL,
                "--seconds",
                "10",
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hef_dir),
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    (run_dir,) = runs.iterdir()
    (record,) = [json.loads(p.read_text()) for p in run_dir.glob("*.json")]
    assert record["all_close"] is True and record["tolerance"] == "sqnr" and record["final_output_sqnr_db"] > 60
    return record["backend_stats"]


@pytest.mark.slow
def test_full_size_runs_in_both_execution_modes_and_on_hailo10h(tmp_path, monkeypatch, capsys):
    # scheduled_groups (the default): 51 network groups, two configure windows of 32
    code, hef_dir = _compiled(tmp_path, monkeypatch, "scheduled", [])
    assert code == 0
    stats = _parity(tmp_path, monkeypatch, hef_dir, "scheduled")
    assert (stats["execution_mode"], stats["api"], stats["network_groups"], stats["configure_windows"]) == (
        "scheduled_groups",
        "vstreams",
        51,
        2,
    )
    assert stats["scheduler_switches"] >= 51 and stats["activations"] == 0 and stats["reconfigurations"] >= 1

    # activated_packs of 8: six of the seven full-size packs need several contexts (the SDK
    # double's size rule), which their joint script forbids, so compile says so (hailo_runtime's
    # refusal of multi-context packs: test_hailort_faithful)
    code, hef_dir = _compiled(tmp_path, monkeypatch, "packs8", ["--execution-mode", "activated_packs"])
    assert code == 1 and "did not fit one context (6 of 7 packs)" in capsys.readouterr().err

    # activated_packs of 4: single-context, 13 packs in one window, activated one at a time
    code, hef_dir = _compiled(tmp_path, monkeypatch, "packs4", ["--networks-per-group", "4"])
    assert code == 0
    stats = _parity(tmp_path, monkeypatch, hef_dir, "packs4")
    assert (stats["execution_mode"], stats["network_groups"], stats["configure_windows"]) == ("activated_packs", 13, 1)
    assert stats["activations"] >= 13 and stats["scheduler_switches"] == 0 and stats["reconfigurations"] == 0

    # Hailo-10H: HailoRT 5, InferModel only, one network group per stage, windows of 26
    code, hef_dir = _compiled(tmp_path, monkeypatch, "h10", ["--hw-arch", "hailo10h"], hw_arch="hailo10h")
    assert code == 0
    stats = _parity(tmp_path, monkeypatch, hef_dir, "h10", arch="hailo10h")
    assert (stats["api"], stats["execution_mode"], stats["network_groups"], stats["configure_windows"]) == (
        "infer_model",
        "scheduled_groups",
        51,
        2,
    )
    assert stats["hailort_version"].startswith("5.") and stats["network_groups_per_device"] == 26
