"""`evaluate` flags results instead of averaging them (issue 39): a mixture whose reference is
silent is named in its CSV row and in the summary, and left out of every mean; a metric that is
not finite never enters one."""

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo.cli import main
from convtasnet_hailo.separation.evaluation import EVALUATE_COLUMNS, read_rows, summarize
from tests.conftest import write_librimix_tree


def _row(mixture_id: str, si_snri: float, silent: str = "", pesq: float = 3.0) -> dict:
    numbers = {key: 1.0 for key in EVALUATE_COLUMNS if key not in ("mixture_ID", "parity_ok", "silent_references")}
    return {
        **numbers,
        "mixture_ID": mixture_id,
        "si_snri_db": si_snri,
        "si_snr_s2_db": math.nan if silent else 1.0,
        "pesq": pesq,
        "num_samples": 4000,
        "parity_ok": True,
        "silent_references": silent,
    }


def test_the_summary_counts_what_it_leaves_out():
    rows = [_row("a", 10.0), _row("b", 20.0, silent="s2"), _row("c", math.inf, pesq=math.nan), _row("d", math.nan)]
    summary = summarize(rows, {})
    assert summary["si_snri_db"]["mean"] == 15.0, "Inf and NaN never enter a mean"
    assert summary["si_snr_db"]["mean"] == 1.0, "the silent s2's NaN left out, s1 kept"
    assert summary["pesq"]["mean"] == 3.0 and summary["n_mixtures"] == 4
    assert summary["excluded_silent_references"] == 1 and summary["silent_references"] == ["b:s2"]
    assert summary["excluded_non_finite"]["si_snri_db"] == 2 and summary["excluded_non_finite"]["pesq"] == 1


def test_a_csv_written_before_the_silent_column_still_resumes(tmp_path):
    path = tmp_path / "old.csv"
    old = [c for c in EVALUATE_COLUMNS if c != "silent_references"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, old)
        writer.writeheader()
        writer.writerow({k: v for k, v in _row("a", 5.0).items() if k in old})
    assert read_rows(path)[0]["silent_references"] == ""


def test_evaluate_names_a_silent_reference_and_averages_the_rest(tmp_path, tiny_checkpoint, caplog):
    metadata = write_librimix_tree(tmp_path / "tree", n=2)
    with open(metadata, newline="") as handle:
        entries = list(csv.DictReader(handle))
    silent_id = entries[1]["mixture_ID"]
    sf.write(entries[1]["source_2_path"], np.zeros(4000), 8000, subtype="FLOAT")
    argv = ["evaluate", "--metadata", str(metadata), "--model", str(tiny_checkpoint), "--out", str(tmp_path / "r")]
    code = main(argv)
    assert code in (0, 1)  # 1: a random model may miss the parity contract; the rows are written either way
    run = next((tmp_path / "r").rglob("evaluate_summary.json")).parent
    rows = {r["mixture_ID"]: r for r in read_rows(run / "evaluate_per_utterance.csv")}
    assert rows[silent_id]["silent_references"] == "s2" and math.isnan(rows[silent_id]["si_snr_s2_db"])
    assert math.isfinite(rows[silent_id]["si_snri_db"]), "its s1 is scored"
    summary = json.loads((run / "evaluate_summary.json").read_text())
    assert summary["excluded_silent_references"] == 1 and summary["silent_references"] == [f"{silent_id}:s2"]
    assert summary["si_snri_db"]["mean"] == pytest.approx(np.mean([r["si_snri_db"] for r in rows.values()]))
    assert any("is silent" in r.getMessage() and silent_id in r.getMessage() for r in caplog.records)
