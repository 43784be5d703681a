#!/usr/bin/env python3
"""Paired per-mixture SI-SNRi difference of two `convtasnet-hailo evaluate` runs of the same set:
mean of (B - A), a 95% bootstrap interval over mixtures (5,000 resamples, seed 0), and on how
many mixtures B is better.

    python scripts/paired_difference.py runs_train/eval_shipped/max_mix_clean runs_train/eval_ftb500/max_clean
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from evaluate_table import run_file


def scores(run: Path) -> dict[str, float]:
    """mixture_ID -> SI-SNRi (dB) of a run folder, the newest run folder below it, or its CSV."""
    path = run_file(run, "evaluate_per_utterance.csv") if run.is_dir() else run
    with open(path, newline="") as handle:
        return {row["mixture_ID"]: float(row["si_snri_db"]) for row in csv.DictReader(handle)}


def paired(a: dict[str, float], b: dict[str, float], resamples: int = 5000) -> tuple[float, float, float, int, int]:
    """(mean of b - a, 2.5th and 97.5th percentile of the bootstrap mean, wins of b, mixtures)."""
    ids = sorted(a)
    differences = np.array([b[i] - a[i] for i in ids])
    rng = np.random.default_rng(0)
    means = differences[rng.integers(0, differences.size, size=(resamples, differences.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(differences.mean()), float(low), float(high), int((differences > 0).sum()), differences.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="the reference run (e.g. the shipped model's)")
    parser.add_argument("b", type=Path, help="the run compared with it")
    args = parser.parse_args()
    a, b = scores(args.a), scores(args.b)
    if set(a) != set(b):
        raise SystemExit("the runs did not evaluate the same mixtures; pass runs of the same --metadata")
    mean, low, high, wins, n = paired(a, b)
    print(f"n={n} mean diff {mean:+.2f} dB, 95% CI [{low:+.2f}, {high:+.2f}], better on {wins}/{n}")


if __name__ == "__main__":
    main()
