"""scripts/plot_training_history.py: the history it reads and the PNG it writes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_training_history.py"


def _load():
    spec = importlib.util.spec_from_file_location("plot_training_history_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _history(path: Path) -> Path:
    lines = [
        {"step": 0, "event": "start", "val_si_snri_init": 1.5},
        {"step": 100, "piece": 1, "minutes": 8.0, "val_si_snri": 2.0},
        {"step": 0, "event": "start", "val_si_snri_init": 9.9},  # a resumed piece's start line
        {"step": 200, "piece": 2, "minutes": 17.5, "val_si_snri": 2.25},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_history_starts_at_the_initial_score_and_ignores_later_start_lines(tmp_path):
    minutes, scores, steps = _load().read_history(_history(tmp_path / "run.history.jsonl"))
    assert minutes == [0.0, 8.0, 17.5]
    assert scores == [1.5, 2.0, 2.25]
    assert steps == [0, 100, 200]


def test_writes_a_png(tmp_path):
    out = tmp_path / "plot.png"
    history = _history(tmp_path / "run.history.jsonl")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--run", f"a={history}", "--reference", "target=4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_history_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--run", f"a={tmp_path / 'none.jsonl'}", "--out", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "no such file" in result.stderr and "Traceback" not in result.stderr
