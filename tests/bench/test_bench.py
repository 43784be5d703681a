"""`bench` on a tiny model: every path measured, the ratio keys, the table, the JSON and PNG."""

import json

from convtasnet_hailo.cli import main


def test_bench_writes_every_path_and_the_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--random-preset", "tiny", "--seconds", "1", "--repeats", "2", "--tile-w", "32", "64",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["paths"]) == {"torch_reference", "monolithic_onnxruntime", "stitched_torch_proxy_tile32",
                                    "stitched_onnxruntime_tile32", "stitched_torch_proxy_tile64",
                                    "stitched_onnxruntime_tile64"}
    stitched = record["paths"]["stitched_onnxruntime_tile32"]
    assert stitched["stage_invocations"] == 15 and stitched["boundary_bytes_16bit"] == 2 * stitched["boundary_values"]
    assert 0 <= stitched["host_share"] <= 1 and len(stitched["times_s"]) == 2
    assert all(p["peak_rss_bytes"] > 10 ** 7 and p["rtf"] > 0 for p in record["paths"].values())
    assert record["ratio_stitched_onnxruntime_vs_monolithic_onnxruntime"] > 0
    assert record["ratio_stitched_torch_proxy_vs_torch_reference"] > 0
    assert (tmp_path / "bench.png").stat().st_size > 5000
    assert "stitched onnxruntime / monolithic onnxruntime" in capsys.readouterr().out
