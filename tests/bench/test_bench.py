"""`bench` on a tiny model: every path measured, the ratio keys, the table, the JSON and PNG."""

import json

from convtasnet_hailo.cli import main


def test_bench_writes_every_path_and_the_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--random-preset",
                "tiny",
                "--seconds",
                "1",
                "--repeats",
                "2",
                "--tile-w",
                "32",
                "64",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert set(record["paths"]) == {"torch_reference", "monolithic_onnxruntime"} | {
        f"stitched_{backend}{plan}_tile{w}"
        for backend in ("torch_proxy", "onnxruntime")
        for plan in ("", "_float_plan")
        for w in (32, 64)
    }
    stitched = record["paths"]["stitched_onnxruntime_tile32"]
    assert stitched["stage_invocations"] == 15 and stitched["boundary_bytes_16bit"] == 2 * stitched["boundary_values"]
    assert 0 <= stitched["host_share"] <= 1 and len(stitched["times_s"]) == 2
    kinds = stitched["host_seconds_by_kind"]  # where the host time goes: the tiny model is gLN
    assert {"gln_statistics", "gather+gln_affine", "gather", "stage_outputs", "OverlapAdd"} <= set(kinds)
    assert all(seconds >= 0 for seconds in kinds.values()) and sum(kinds.values()) <= stitched["host_seconds"] * 1.5
    assert all(p["peak_rss_bytes"] > 10**7 and p["rtf"] > 0 for p in record["paths"].values())
    assert all(
        p["peak_rss_method"] in ("VmHWM after clear_refs", "VmRSS sampled every 5 ms") for p in record["paths"].values()
    )
    assert record["ratio_stitched_onnxruntime_vs_monolithic_onnxruntime"] > 0
    mono = record["paths"]["monolithic_onnxruntime"]  # its profile: the norms are the ReduceMean scopes' nodes
    assert {"Conv", "ReduceMean", "Sqrt"} <= set(mono["kernel_seconds_by_op"])
    assert 0 < mono["norm_seconds"] < mono["kernel_seconds"]
    assert mono["norm_share"] == mono["norm_seconds"] / mono["kernel_seconds"]
    assert mono["kernel_seconds"] >= mono["kernel_seconds_by_op"]["ReduceMean"] + mono["kernel_seconds_by_op"]["Conv"]
    assert record["ratio_stitched_torch_proxy_vs_torch_reference"] > 0
    assert (tmp_path / "bench.png").stat().st_size > 5000
    assert "separate_long_input" not in record and "ratio_stitched_onnxruntime_block_vs_unblocked" not in record
    prediction = record["device_prediction"]
    assert prediction["device"] == "hailo8l" and prediction["recommended_tile_w"] in (32, 64, 128, 256, 512)
    assert {r["tile_w"] for r in prediction["per_tile_width"]} == {32, 64, 128, 256, 512}
    assert set(prediction["rtf_at_recommended"]) == {"hailo8l_gen2", "hailo8l_gen3", "hailo8_gen2", "hailo8_gen3"}
    assert all("source" in p for p in prediction["parameters"].values())
    assert "ASSUMPTION" in prediction["parameters"]["utilization"]["source"]
    float_plan = record["paths"]["stitched_onnxruntime_float_plan_tile32"]  # gLN, halos and skip sums in the stages
    assert record["float_plan_options"] == ["--gln-in-stages", "--halo-edges", "--skip-sums-in-stages"]
    assert float_plan["stage_invocations"] == stitched["stage_invocations"]
    assert "gather+gln_affine" not in float_plan["host_seconds_by_kind"]
    assert "AddTensors" not in float_plan["host_seconds_by_kind"]
    assert record["host_share_stitched_onnxruntime_float_plan"] == float_plan["host_share"]
    assert (
        record["ratio_stitched_onnxruntime_float_plan_vs_monolithic_onnxruntime"]
        == float_plan["median_s"] / mono["median_s"]
    )
    out = capsys.readouterr().out
    assert "stitched onnxruntime / monolithic onnxruntime" in out and "float plan (--gln-in-stages" in out


def test_cost_model_arithmetic_and_overrides():
    import pytest

    from convtasnet_hailo.errors import UserError
    from convtasnet_hailo.plan.cost_model import DeviceModel, parse_overrides, predict

    execution = {
        "mode": "scheduled_groups",
        "switches": 2,
        "activations": 0,
        "network_groups_configured": 0,
        "configure_windows": 1,
    }
    summary = {
        "model_config": {"sample_rate": 8000, "stride": 8},
        "tile_w": 100,
        "network_groups": 2,
        "execution": execution,
        "per_stage": [{"macs_per_frame": 1_950_000, "boundary_values_per_audio_second": 400_000, "batch_groups": 1}],
    }
    model = DeviceModel("hailo8l", "gen2", parse_overrides(["utilization=0.3", "call_overhead_ms=1"]))
    row = predict(summary, 1.0, model)
    # 1,000 frames x 1.95 M MACs / (13e12 / 2 x 0.3) = 1 ms; 400 kB / (500 MB/s x 0.8) = 1 ms;
    # 10 tiles in batches of 8 = 2 calls x 1 ms + 2 switches x 2 ms
    assert row["compute_s"] == pytest.approx(1e-3) and row["transfer_s"] == pytest.approx(1e-3)
    assert row["calls"] == 2 and row["overhead_s"] == pytest.approx(6e-3) and row["rtf"] == pytest.approx(8e-3)
    # activated packs: 3 activations x 2 ms; two windows: 40 groups reconfigured x 20 ms
    packs = predict(
        {**summary, "execution": {**execution, "mode": "activated_packs", "switches": 0, "activations": 3}}, 1.0, model
    )
    assert packs["overhead_s"] == pytest.approx(8e-3) and packs["execution_mode"] == "activated_packs"
    windows = predict({**summary, "execution": {**execution, "network_groups_configured": 40}}, 1.0, model)
    assert windows["overhead_s"] == pytest.approx(806e-3)
    # half the MACs at 16 bits, at the notebook's 7.4x: compute x (1 + 0.5 x 6.4)
    wide = predict(summary, 1.0, DeviceModel("hailo8l", "gen2", parse_overrides(["a16_mac_share=0.5"])))
    assert wide["compute_s"] == pytest.approx(1e-3 * 4.2)
    with pytest.raises(UserError, match="a16_mac_share=2.0: a share"):
        DeviceModel(values=parse_overrides(["a16_mac_share=2"]))
    with pytest.raises(UserError, match="--device-param speed: unknown"):
        DeviceModel(values=parse_overrides(["speed=2"]))
    with pytest.raises(UserError, match="NAME=NUMBER"):
        parse_overrides(["utilization=fast"])


def test_bench_times_the_blocked_plan_and_a_long_separation(tmp_path, capsys):
    out = tmp_path / "bench"  # --out DIR: bench.json and bench.png in it
    assert (
        main(
            [
                "bench",
                "--random-preset",
                "tiny",
                "--seconds",
                "1",
                "--repeats",
                "1",
                "--tile-w",
                "32",
                "--block-chan",
                "8",
                "--long-seconds",
                "130",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").stat().st_size > 5000
    blocked, plain = (
        record["paths"]["stitched_onnxruntime_block8_tile32"],
        record["paths"]["stitched_onnxruntime_tile32"],
    )
    assert blocked["block_chan"] == 8 and blocked["stage_invocations"] > plain["stage_invocations"]
    assert record["ratio_stitched_onnxruntime_block_vs_unblocked"] == blocked["median_s"] / plain["median_s"]
    long = record["separate_long_input"]
    assert long["seconds_of_audio"] == 130 and long["segment_seconds"] == 30 and long["peak_rss_bytes"] > 10**7
    assert long["rtf"] == long["wall_s"] / 130
    printed = capsys.readouterr().out
    assert "--block-chan 8 / without" in printed and f"wrote {out / 'bench.json'} and {out / 'bench.png'}" in printed
    assert main(["bench", "--random-preset", "tiny", "--out", str(out), "--json", str(tmp_path / "b.json")]) == 2
    assert "--out and --json both given" in capsys.readouterr().err


def test_bench_times_hailo_runtime_and_sets_its_device_time_beside_the_prediction(
    compiled, monkeypatch, capsys, tmp_path, tiny_checkpoint
):
    """`bench --backend hailo_runtime --hef-dir`: the device's stitched path with the same fields,
    its counted device calls per utterance, and measured against predicted device time (the HailoRT
    TEST DOUBLE computes each stage in onnxruntime, so only the bookkeeping is checked here)."""
    from tests.doubles import runtime as runtime_double

    _, _, hef_dir = compiled
    runtime_double.install(monkeypatch)
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--model",
                str(tiny_checkpoint),
                "--seconds",
                "0.6",
                "--repeats",
                "2",
                "--tile-w",
                "16",
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hef_dir),
                "--batch-size",
                "4",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    device = record["paths"]["stitched_hailo_runtime_tile16"]
    assert device["stage_invocations"] == 15 and len(device["times_s"]) == 2 and 0 <= device["host_share"] <= 1
    stats = device["backend_stats"]
    tiles = -(-((4800 - 16) // 8 + 1) // 16)  # the tiny model's encoder frames (L 16, S 8) in tiles of 16
    assert stats["device_calls"]["encoder"] == -(-tiles // 4)  # per run, not summed over runs or the warm-up
    assert stats["hefs"] == 2 and stats["configurations"] >= 1  # state, as it ended
    fit = device["measured_vs_predicted"]
    assert fit["batch_size"] == 4 and fit["measured_calls"] == sum(stats["device_calls"].values())
    assert fit["predicted_calls"] == fit["predicted"]["calls"] and fit["measured_device_s"] > 0
    assert "implied call overhead" in capsys.readouterr().err  # progress: the module loggers, on stderr


def test_bench_backend_option_adds_device_backends_only(capsys):
    assert main(["bench", "--random-preset", "tiny", "--seconds", "0.5", "--backend", "onnxruntime"]) == 2
    assert "bench always times torch_proxy and onnxruntime" in capsys.readouterr().err
    assert main(["bench", "--random-preset", "tiny", "--seconds", "0.5", "--backend", "hailo_runtime"]) == 2
    captured = capsys.readouterr()
    assert "--hef-dir" in captured.err and "bench: torch reference" not in captured.out  # refused before any timing
