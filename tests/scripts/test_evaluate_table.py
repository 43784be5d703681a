"""scripts/evaluate_table.py: a row per evaluate run, from its evaluate_summary.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evaluate_table.py"

SUMMARY = {
    "n_mixtures": 3,
    "si_snri_db": {"mean": 4.237, "median": -0.5},
    "pesq": {"mean": 2.04},
    "pesq_mixture": {"mean": 1.91},
    "stoi": {"mean": 0.777},
    "stoi_mixture": {"mean": 0.752},
    "parity_max_abs": 3.3e-06,
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_a_row_from_the_newest_run_folder_below_a_set_folder(tmp_path):
    for stamp, mean in (("20261201_100000", 1.0), ("20261201_120000", 4.237)):
        (tmp_path / stamp).mkdir()
        (tmp_path / stamp / "evaluate_summary.json").write_text(
            json.dumps({**SUMMARY, "si_snri_db": {"mean": mean, "median": -0.5}})
        )
    result = _run("--run", f"shipped|test max={tmp_path}")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("| shipped | test max | 3 | +4.24 dB (-0.50) | 1.91 -> 2.04 | 0.75 -> 0.78 | 3.3e-06 |")
    assert "20261201_120000" in last


def test_a_folder_without_a_summary_is_a_one_line_error(tmp_path):
    result = _run("--run", f"a|b={tmp_path}")
    assert result.returncode != 0
    assert "no evaluate_summary.json" in result.stderr and "Traceback" not in result.stderr
