#!/usr/bin/env python3
"""Buckets `convtasnet-hailo evaluate`'s per-mixture scores by mixture length and by the level
difference of the two sources, and writes markdown tables (one column group per model).

The level difference of a mixture is |10 log10(E1 / E2)|, E = the energy of each source file
over the mixture's extent (what the separator faces; LibriMix's per-source loudness targets
give 0-8 dB, and min mode's cut can widen it).

    python scripts/bucket_evaluation.py --metadata data/librimix_demo/wav8k/max/metadata/mixture_test_mix_clean.csv \\
        --run shipped=module_runs/20261201_130213 --run fine-tuned=module_runs/20261201_150000 \\
        --title "LibriMix-style test, max, mix_clean" --out docs/measured/demo_buckets.md
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

import numpy as np
import soundfile as sf

from convtasnet_hailo.audio.librimix import read_metadata

LENGTH_EDGES = (0.0, 5.0, 8.0, 11.0, 14.0, math.inf)  # seconds
LEVEL_EDGES = (0.0, 2.0, 4.0, 6.0, math.inf)  # dB


def level_differences(metadata: Path) -> dict[str, float]:
    out = {}
    for entry in read_metadata(metadata):
        energies = [float(np.sum(sf.read(p, dtype="float64")[0] ** 2)) for p in entry.source_paths[:2]]
        out[entry.mixture_id] = abs(10 * math.log10((energies[0] + 1e-12) / (energies[1] + 1e-12)))
    return out


def read_scores(run: Path) -> list[dict]:
    path = run / "evaluate_per_utterance.csv" if run.is_dir() else run
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _label(edges: tuple[float, ...], i: int, unit: str) -> str:
    low, high = edges[i], edges[i + 1]
    return f">= {low:g} {unit}" if math.isinf(high) else f"{low:g}-{high:g} {unit}"


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    return next(i for i in range(len(edges) - 1) if value < edges[i + 1])


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def table(runs: dict[str, list[dict]], key, edges: tuple[float, ...], unit: str, heading: str) -> list[str]:
    names = list(runs)
    lines = [
        f"| {heading} | mixtures | "
        + " | ".join(f"{n}: SI-SNRi mean (median)" for n in names)
        + " | PESQ mixture -> "
        + ", ".join(names)
        + " | STOI mixture -> "
        + ", ".join(names)
        + " |",
        "|" + "---|" * (3 + len(names) + 1),
    ]
    first = runs[names[0]]
    groups: dict[int | None, list[str]] = {}
    for row in first:
        groups.setdefault(_bucket(key(row), edges), []).append(row["mixture_ID"])
    by_id = {n: {r["mixture_ID"]: r for r in rows} for n, rows in runs.items()}
    for index in [*sorted(groups), None]:
        ids = [r["mixture_ID"] for r in first] if index is None else groups[index]
        cells = []
        for name in names:
            values = [float(by_id[name][i]["si_snri_db"]) for i in ids]
            cells.append(f"{statistics.fmean(values):.2f} dB ({statistics.median(values):.2f})")
        pesq = [f"{_mean([float(by_id[names[0]][i]['pesq_mixture']) for i in ids]):.2f}"] + [
            f"{_mean([float(by_id[n][i]['pesq']) for i in ids]):.2f}" for n in names
        ]
        stoi = [f"{_mean([float(by_id[names[0]][i]['stoi_mixture']) for i in ids]):.2f}"] + [
            f"{_mean([float(by_id[n][i]['stoi']) for i in ids]):.2f}" for n in names
        ]
        label = "all" if index is None else _label(edges, index, unit)
        lines.append(
            f"| {label} | {len(ids)} | " + " | ".join(cells) + f" | {pesq[0]} -> {', '.join(pesq[1:])} | "
            f"{stoi[0]} -> {', '.join(stoi[1:])} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", type=Path, required=True, help="the LibriMix CSV the runs evaluated")
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        help="NAME=PATH: an evaluate run folder (or its evaluate_per_utterance.csv)",
    )
    parser.add_argument("--rate", type=int, default=8000, help="the model's sample rate (evaluate's num_samples)")
    parser.add_argument("--title", help="a heading above the tables")
    parser.add_argument("--out", type=Path, help="append the markdown here (also printed)")
    args = parser.parse_args()
    runs = {}
    for text in args.run:
        name, sep, path = text.partition("=")
        if not sep:
            raise SystemExit(f"--run {text!r}: pass NAME=PATH")
        runs[name] = read_scores(Path(path))
    ids = [{r["mixture_ID"] for r in rows} for rows in runs.values()]
    if any(i != ids[0] for i in ids):
        raise SystemExit("the runs did not evaluate the same mixtures; pass runs of the same --metadata")
    levels = level_differences(args.metadata)
    rate = args.rate
    lines = [f"### {args.title}", ""] if args.title else []
    lines += table(runs, lambda r: int(r["num_samples"]) / rate, LENGTH_EDGES, "s", "mixture length")
    lines += [""] + table(runs, lambda r: levels[r["mixture_ID"]], LEVEL_EDGES, "dB", "level difference") + [""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
