"""scripts/paired_difference.py: the paired SI-SNRi difference of two evaluate runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paired_difference.py"


def _run_folder(path: Path, scores: dict[str, float]) -> Path:
    (path / "20261201_120000").mkdir(parents=True)
    rows = ["mixture_ID,si_snri_db"] + [f"{k},{v}" for k, v in scores.items()]
    (path / "20261201_120000" / "evaluate_per_utterance.csv").write_text("\n".join(rows) + "\n")
    return path


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_mean_interval_and_wins(tmp_path):
    a = _run_folder(tmp_path / "a", {"m1": 1.0, "m2": 2.0, "m3": 3.0, "m4": 4.0})
    b = _run_folder(tmp_path / "b", {"m1": 2.0, "m2": 3.0, "m3": 3.5, "m4": 3.5})  # differences 1, 1, 0.5, -0.5
    result = _run(a, b)
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    assert text.startswith("n=4 mean diff +0.50 dB, 95% CI [")
    assert text.endswith("better on 3/4")
    low, high = (float(x) for x in text.split("[")[1].split("]")[0].split(", "))
    assert -0.5 <= low <= 0.5 <= high <= 1.0


def test_runs_of_different_sets_are_a_one_line_error(tmp_path):
    a = _run_folder(tmp_path / "a", {"m1": 1.0})
    b = _run_folder(tmp_path / "b", {"m2": 1.0})
    result = _run(a, b)
    assert result.returncode != 0
    assert "same mixtures" in result.stderr and "Traceback" not in result.stderr
