#!/usr/bin/env python3
"""Plots validation SI-SNRi against training minutes from `train_demo_model.py` histories.

Each ``--run NAME=PATH`` is a ``<out>.history.jsonl``: its ``start`` line gives the score of the
initial weights (``val_si_snri_init``, plotted at minute 0), every other line one validation.
A horizontal line per ``--reference NAME=DB`` marks a fixed figure (e.g. a target).

    python scripts/plot_training_history.py --run fine-tune=runs_train/ftb/ftb.history.jsonl \\
        --run causal=runs_train/causal/causal.history.jsonl --reference "causal target=4" \\
        --out docs/measured/demo_training_history.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_history(path: Path) -> tuple[list[float], list[float], list[int]]:
    """Minutes, validation SI-SNRi (dB) and steps of one history, starting with the initial score."""
    minutes, scores, steps = [], [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("event") == "start":
            if "val_si_snri_init" in entry and not minutes:
                minutes, scores, steps = [0.0], [float(entry["val_si_snri_init"])], [0]
            continue
        minutes.append(float(entry["minutes"]))
        scores.append(float(entry["val_si_snri"]))
        steps.append(int(entry["step"]))
    return minutes, scores, steps


def _pair(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"{option} {text!r}: pass NAME=VALUE")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=PATH of a .history.jsonl")
    parser.add_argument("--reference", action="append", default=[], help="NAME=DB: a horizontal line")
    parser.add_argument("--title", default="validation SI-SNRi (LibriMix-style dev sets)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for text in args.run:
        name, path = _pair(text, "--run")
        if not Path(path).is_file():
            raise SystemExit(f"--run {text!r}: no such file; pass a train_demo_model.py .history.jsonl")
        minutes, scores, steps = read_history(Path(path))
        axis.plot(minutes, scores, marker="o", label=f"{name} ({steps[-1] if steps else 0} steps)")
    for text in args.reference:
        name, value = _pair(text, "--reference")
        axis.axhline(float(value), linestyle="--", color="grey", linewidth=1)
        axis.annotate(name, (0, float(value)), textcoords="offset points", xytext=(2, 3), fontsize=8, color="grey")
    axis.set_xlabel("training minutes (one CPU core)")
    axis.set_ylabel("SI-SNRi (dB)")
    axis.set_title(args.title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
