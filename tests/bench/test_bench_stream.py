"""`bench --stream`: every streaming plan of a small causal model timed hop by hop, the table and
the record (bench_stream.json), the arithmetic limit beside it; models and options that cannot
stream are refused in one line."""

import dataclasses
import json

import pytest

from convtasnet_hailo.bench.stream import numpy_matmul_rate, onnxruntime_matmul_rate
from convtasnet_hailo.cli import main
from convtasnet_hailo.export.stateful import macs_per_hop
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from tests.conftest import TINY

CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)


@pytest.fixture
def causal_checkpoint(tmp_path):
    path = tmp_path / "causal.pth"
    save_model(random_model(CAUSAL, seed=2), path)
    return str(path)


def test_bench_stream_times_every_plan_at_each_hop_and_thread_count(causal_checkpoint, tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "--model", causal_checkpoint, "--stream", "4", "8", "--threads", "1", "2"]
    assert main([*args, "--seconds", "0.5", "--repeats", "2", "--out", str(out)]) == 0
    record = json.loads((out / "bench_stream.json").read_text())
    assert not (out / "bench_stream.png").exists() and record["kind"] == "stream"
    assert record["plans"] == ["stateful", "per-hop", "rf-windows"]  # causal cLN, ReLU mask: all three
    rows = {(r["plan"], r["hop_ms"], r["threads"]): r for r in record["rows"]}
    assert set(rows) == {(p, h, t) for p in record["plans"] for h in (4.0, 8.0) for t in (1, 2)}
    hops = {4.0: 32, 8.0: 64}  # 8 kHz
    for (_, hop_ms, _), row in rows.items():
        assert row["hop_samples"] == hops[hop_ms] and row["macs_per_hop"] == macs_per_hop(CAUSAL, hops[hop_ms])
        assert len(row["passes"]) == 2 and row["hops_timed"] == 2 * (4000 // hops[hop_ms])
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
        assert row["gmac_per_s_at_p50"] == pytest.approx(row["macs_per_hop"] / row["p50_ms"] / 1e6)
        assert row["share_of_limit"] == pytest.approx(row["gmac_per_s_at_p50"] / record["matmul"]["limit_gmac_per_s"])
        assert row["rtf"] > 0 and 0 <= row["deadline_misses"] <= row["hops_timed"]
    assert rows[("stateful", 8.0, 1)]["calls_per_hop"] == 1.0
    assert rows[("per-hop", 8.0, 1)]["calls_per_hop"] > 1 and rows[("rf-windows", 8.0, 1)]["calls_per_hop"] >= 1
    limit = record["matmul"]
    assert limit["limit_gmac_per_s"] == max(limit["numpy_gmac_per_s"], limit["onnxruntime_gmac_per_s"]) > 0
    assert len(limit["measurements"]) == 4 and len(record["load_average_before"]) == 3
    printed = capsys.readouterr().out
    assert "the limit:" in printed and "GMAC/s@p50  of limit" in printed and "wrote " in printed
    assert sum(line.startswith(("stateful", "per-hop", "rf-windows")) for line in printed.splitlines()) == 12


def test_bench_stream_plans_choose_and_cgln_has_no_windows(tmp_path, capsys):
    path = tmp_path / "cgln.pth"
    save_model(random_model(dataclasses.replace(CAUSAL, norm_type=NormType.CGLN), seed=2), path)
    base = ["bench", "--model", str(path), "--stream", "8", "--seconds", "0.25", "--repeats", "1"]
    assert main([*base, "--json", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["plans"] == ["stateful", "per-hop"]
    assert main([*base, "--plans", "rf-windows"]) == 2
    assert "--rf-windows needs a causal model with cLN norms" in capsys.readouterr().err
    assert main([*base, "--plans", "stateful"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines() if " 8 " in line] == ["stateful"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tile-w", "32"], "drop --tile-w"),
        (["--backend", "onnxruntime"], "drop --backend and its options"),
        (["--threads", "0"], "0 must be >= 1"),
        (["--stream", "1.5"], "a hop must be a whole number of encoder strides"),
    ],
    ids=["tile_w", "backend", "threads", "hop"],
)
def test_bench_stream_refuses_what_does_not_apply(causal_checkpoint, capsys, extra, message):
    args = ["bench", "--model", causal_checkpoint, "--stream", "8", "--seconds", "0.1", *extra]
    try:
        status = main(args)
    except SystemExit as exit:  # argparse's own refusals
        status = exit.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_bench_stream_refuses_a_model_that_cannot_stream(capsys):
    assert main(["bench", "--random-preset", "tiny", "--stream", "8", "--seconds", "0.1"]) == 2
    assert "this model is not causal (gLN, causal=False)" in capsys.readouterr().err


def test_the_matmul_rates_are_measured():
    assert numpy_matmul_rate(64, 0.05) > 1e7 and onnxruntime_matmul_rate(64, 0.05) > 1e7
