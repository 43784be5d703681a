#!/usr/bin/env python3
"""A markdown table of `convtasnet-hailo evaluate` runs: one row per (model, set) from each run's
``evaluate_summary.json`` (SI-SNRi mean and median, PESQ and STOI against the mixture's, parity).

    python scripts/evaluate_table.py --run "shipped|test max clean=runs_train/eval_shipped/max_clean/20261201_130213" \\
        --run "fine-tuned|test max clean=runs_train/eval_ftb500/max_clean/20261201_170500"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADER = [
    "| model | set | mixtures | SI-SNRi mean (median) | PESQ mixture -> output | STOI mixture -> output "
    "| parity max-abs | run |",
    "|---|---|---|---|---|---|---|---|",
]


def run_file(run: Path, name: str) -> Path:
    """``name`` in an evaluate run folder, or in the newest run folder below it."""
    path = run / name
    if not path.is_file():
        found = sorted(run.glob(f"*/{name}"))
        if not found:
            raise SystemExit(f"{run}: no {name}; pass an evaluate run folder")
        path = found[-1]
    return path


def summary(run: Path) -> dict:
    """The summary of one evaluate run folder (or the newest run folder below it)."""
    path = run_file(run, "evaluate_summary.json")
    return {**json.loads(path.read_text()), "run": str(path.parent)}


def row(model: str, name: str, s: dict) -> str:
    si = s["si_snri_db"]
    return (
        f"| {model} | {name} | {s['n_mixtures']} | {si['mean']:+.2f} dB ({si['median']:+.2f}) | "
        f"{s['pesq_mixture']['mean']:.2f} -> {s['pesq']['mean']:.2f} | "
        f"{s['stoi_mixture']['mean']:.2f} -> {s['stoi']['mean']:.2f} | {s['parity_max_abs']:.1e} | "
        f"`{s['run']}` |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="'MODEL|SET=PATH': an evaluate run folder")
    args = parser.parse_args()
    lines = list(HEADER)
    for text in args.run:
        label, sep, path = text.partition("=")
        model, bar, name = label.partition("|")
        if not sep or not bar:
            raise SystemExit(f"--run {text!r}: pass 'MODEL|SET=PATH'")
        lines.append(row(model, name, summary(Path(path))))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
