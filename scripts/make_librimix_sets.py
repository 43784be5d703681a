#!/usr/bin/env python3
"""Builds LibriMix-recipe validation and test sets from the held-out speakers of the shipped corpus.

Two steps. ``recipe`` draws the mixtures (seeded) and measures loudness (pyloudnorm, ITU-R
BS.1770): it writes one small CSV per subset, shipped in `corpus/librimix_recipes/`. ``build``
turns a recipe into audio and LibriMix metadata (numpy and soundfile only), so the same sets are
rebuilt anywhere by one command:

    python scripts/make_librimix_sets.py build --recipes corpus/librimix_recipes \\
        --corpus corpus/librispeech_8k --out data/librimix_demo
    convtasnet-hailo evaluate --metadata data/librimix_demo/wav8k/max/metadata/mixture_test_mix_clean.csv
    # re-drawing the recipes (pip install pyloudnorm):
    python scripts/make_librimix_sets.py recipe --corpus corpus/librispeech_8k --out corpus/librimix_recipes

Subsets: ``dev`` from the 16 validation speakers (`valid/`, checkpoint choice only), ``test``
from the ten test-other speakers (`test/`, evaluation only); neither is in the training data.

What is done as in LibriMix (JorisCos/LibriMix, scripts/create_librimix_metadata.py and
create_librimix_from_metadata.py):
- whole utterances of two different speakers, none shorter than 3 s; dev/test pairs drawn at
  random with repeats of an utterance allowed and repeated pairs removed;
- each source normalized to an integrated loudness drawn uniformly in [-33, -25] LUFS, the noise
  in [-38, -30] LUFS; a source that would clip is scaled to a peak of 0.9 instead; when the sum of
  all of them (max mode) peaks above 0.9, every signal is scaled down by the same factor;
- ``max`` mode pads every signal with zeros at the end to the longest source, ``min`` cuts them to
  the shortest; ``mix_clean`` = s1 + s2, ``mix_both`` = s1 + s2 + noise;
- `wav8k/<mode>/<subset>/{s1,s2,noise,mix_clean,mix_both}/<mixture_ID>.wav` (16-bit PCM) and
  `wav8k/<mode>/metadata/mixture_<subset>_<mix_type>.csv` (absolute paths, length in samples).
What differs, and why:
- 8 kHz throughout: the corpus is stored at 8 kHz (LibriMix measures loudness at 16 kHz and
  resamples afterwards);
- the corpus keeps at most 10 s of each utterance. To reach LibriSpeech's lengths, ``--join-prob``
  of the test sources are two consecutive utterances of one speaker (one chapter) joined by a
  0.2-0.6 s pause, at most 16 s. The validation speakers have one utterance each, so dev
  mixtures stay at most 10 s long;
- noise: WHAM! (LibriMix's noise) cannot be fetched here. `noise/` holds synthetic noise, seeded
  per mixture: coloured noise (spectral slope from white to brown) under a slow loudness
  envelope, with mains hum in a third of them. It is a stand-in for a noisy room, not WHAM!.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 8000
MIN_LOUDNESS, MAX_LOUDNESS = -33.0, -25.0  # LibriMix's per-source range (LUFS)
NOISE_OFFSET = -5.0  # LibriMix draws the noise 5 LU below the sources' range
MAX_AMP = 0.9
MIN_SECONDS = 3.0
MAX_SECONDS = 16.0
SUBSETS = {"dev": "valid", "test": "test"}
MODES = ("min", "max")
RECIPE_COLUMNS = [
    "mixture_ID",
    "speaker_1_ID",
    "source_1_files",
    "source_1_pause",
    "source_1_gain",
    "source_1_lufs",
    "speaker_2_ID",
    "source_2_files",
    "source_2_pause",
    "source_2_gain",
    "source_2_lufs",
    "noise_seed",
    "noise_gain",
    "noise_lufs",
]


def read_utterance(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != RATE:
        raise SystemExit(f"{path} is at {rate} Hz; the corpus must be at {RATE} Hz")
    return audio


def joined(corpus_folder: Path, files: list[str], pause: float) -> np.ndarray:
    """One source: its utterances in order, ``pause`` seconds of silence between them."""
    gap = np.zeros(int(round(pause * RATE)), np.float32)
    pieces = []
    for i, name in enumerate(files):
        if i:
            pieces.append(gap)
        pieces.append(read_utterance(corpus_folder / name))
    return np.concatenate(pieces)


def synthetic_noise(seed: int, length: int) -> np.ndarray:
    """Unit-RMS noise: coloured (1/f^a, a in 0-2) under a slow envelope; mains hum in a third."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1 / RATE)
    slope = rng.uniform(0.0, 2.0)
    spectrum *= 1 / np.maximum(freqs, 20.0) ** (slope / 2)
    noise = np.fft.irfft(spectrum, n=length)
    t = np.arange(length) / RATE
    depth, rate_hz, phase = rng.uniform(0.0, 0.7), rng.uniform(0.1, 1.0), rng.uniform(0, 2 * np.pi)
    noise *= 1 + depth * np.sin(2 * np.pi * rate_hz * t + phase)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    if rng.random() < 1 / 3:
        mains = rng.choice([50.0, 60.0])
        hum = sum(
            rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
            for k in range(1, 6)
        )
        noise = noise + rng.uniform(0.3, 1.0) * hum / (np.sqrt(np.mean(hum**2)) + 1e-12)
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    return noise.astype(np.float32)


def utterance_table(folder: Path) -> list[dict]:
    """Every utterance of a corpus folder with speaker, chapter and length, in name order."""
    rows = []
    for path in sorted(folder.glob("*.ogg")):
        speaker, chapter, _ = path.stem.split("-")
        rows.append({"file": path.name, "speaker": speaker, "chapter": chapter, "seconds": sf.info(path).duration})
    if not rows:
        raise SystemExit(f"no .ogg utterances in {folder}")
    return rows


def draw_source(table: list[dict], index: int, join_prob: float, rng: random.Random) -> tuple[list[str], float] | None:
    """Utterance ``index`` alone, or (``join_prob``) joined with the next one of its speaker and
    chapter; None when shorter than 3 s."""
    files, seconds, pause = [table[index]["file"]], table[index]["seconds"], 0.0
    following = table[index + 1] if index + 1 < len(table) else None
    if (
        following
        and following["speaker"] == table[index]["speaker"]
        and following["chapter"] == table[index]["chapter"]
        and rng.random() < join_prob
    ):
        pause = round(rng.uniform(0.2, 0.6), 3)
        if seconds + pause + following["seconds"] <= MAX_SECONDS:
            files.append(following["file"])
            seconds += pause + following["seconds"]
        else:
            pause = 0.0
    return (files, pause) if seconds >= MIN_SECONDS else None


def mixture_id(files_1: list[str], files_2: list[str]) -> str:
    def name(files):
        stems = [Path(f).stem for f in files]
        return stems[0] + "".join("+" + s.split("-")[-1] for s in stems[1:])

    return f"{name(files_1)}_{name(files_2)}"


def loudness_gains(meter, signals: list[np.ndarray], rng: random.Random) -> tuple[list[float], list[float]]:
    """LibriMix's set_loudness + check_for_cliping: (gains, final loudness in LUFS) of the sources
    (all but the last signal) and the noise (the last). Signals are max-mode padded."""
    gains, lufs = [], []
    for i, signal in enumerate(signals):
        measured = meter.integrated_loudness(signal.astype(np.float64))
        low, high = MIN_LOUDNESS, MAX_LOUDNESS
        if i == len(signals) - 1:
            low, high = low + NOISE_OFFSET, high + NOISE_OFFSET
        target = rng.uniform(low, high)
        gain = 10 ** ((target - measured) / 20)
        if np.abs(signal * gain).max() >= 1:  # LibriMix: renormalize a clipping source to a 0.9 peak
            gain = MAX_AMP / np.abs(signal).max()
        gains.append(float(gain))
    total = sum(g * s for g, s in zip(gains, signals, strict=False))
    weight = MAX_AMP / np.abs(total).max() if np.abs(total).max() > MAX_AMP else 1.0
    gains = [g * weight for g in gains]
    lufs = [float(meter.integrated_loudness((g * s).astype(np.float64))) for g, s in zip(gains, signals, strict=False)]
    return gains, lufs


def make_recipe(table: list[dict], folder: Path, n: int, join_prob: float, seed: int) -> list[dict]:
    import pyloudnorm

    meter = pyloudnorm.Meter(RATE)
    rng = random.Random(seed)
    rows, seen = [], set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 100 * n:
            raise SystemExit(f"only {len(rows)} distinct mixtures of {n} could be drawn from {folder}")
        a, b = rng.randrange(len(table)), rng.randrange(len(table))
        if table[a]["speaker"] == table[b]["speaker"]:
            continue
        first, second = draw_source(table, a, join_prob, rng), draw_source(table, b, join_prob, rng)
        if first is None or second is None:
            continue
        key = frozenset([tuple(first[0]), tuple(second[0])])
        if key in seen:
            continue
        seen.add(key)
        sources = [joined(folder, files, pause) for files, pause in (first, second)]
        length = max(len(s) for s in sources)
        noise_seed = rng.randrange(2**31)
        padded = [np.pad(s, (0, length - len(s))) for s in sources] + [synthetic_noise(noise_seed, length)]
        gains, lufs = loudness_gains(meter, padded, rng)
        rows.append(
            {
                "mixture_ID": mixture_id(first[0], second[0]),
                "speaker_1_ID": table[a]["speaker"],
                "source_1_files": " ".join(first[0]),
                "source_1_pause": first[1],
                "source_1_gain": f"{gains[0]:.8g}",
                "source_1_lufs": f"{lufs[0]:.2f}",
                "speaker_2_ID": table[b]["speaker"],
                "source_2_files": " ".join(second[0]),
                "source_2_pause": second[1],
                "source_2_gain": f"{gains[1]:.8g}",
                "source_2_lufs": f"{lufs[1]:.2f}",
                "noise_seed": noise_seed,
                "noise_gain": f"{gains[2]:.8g}",
                "noise_lufs": f"{lufs[2]:.2f}",
            }
        )
    return rows


def recipe(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for subset, folder in SUBSETS.items():
        n, join_prob = (args.n_dev, 0.0) if subset == "dev" else (args.n_test, args.join_prob)
        rows = make_recipe(
            utterance_table(args.corpus / folder),
            args.corpus / folder,
            n,
            join_prob,
            seed=args.seed + (0 if subset == "dev" else 1),
        )
        path = args.out / f"libri2mix_{subset}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, RECIPE_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        print(f"{len(rows)} mixtures -> {path}")


def read_recipe(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def build_subset(rows: list[dict], corpus_folder: Path, out: Path, subset: str) -> None:
    metadata: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        sources = [
            float(row[f"source_{i}_gain"])
            * joined(corpus_folder, row[f"source_{i}_files"].split(), float(row[f"source_{i}_pause"]))
            for i in (1, 2)
        ]
        longest = max(len(s) for s in sources)
        noise = float(row["noise_gain"]) * synthetic_noise(int(row["noise_seed"]), longest)
        for mode in MODES:
            length = longest if mode == "max" else min(len(s) for s in sources)
            s1, s2 = (np.pad(s, (0, longest - len(s)))[:length] for s in sources)
            signals = {
                "s1": s1,
                "s2": s2,
                "noise": noise[:length],
                "mix_clean": s1 + s2,
                "mix_both": s1 + s2 + noise[:length],
            }
            paths = {}
            for folder, wav in signals.items():
                path = out / "wav8k" / mode / subset / folder / f"{row['mixture_ID']}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, wav, RATE, subtype="PCM_16")
                paths[folder] = str(path.resolve())
            for mix_type in ("mix_clean", "mix_both"):
                entry = {
                    "mixture_ID": row["mixture_ID"],
                    "mixture_path": paths[mix_type],
                    "source_1_path": paths["s1"],
                    "source_2_path": paths["s2"],
                }
                if mix_type == "mix_both":
                    entry["noise_path"] = paths["noise"]
                metadata.setdefault((mode, mix_type), []).append(entry | {"length": length})
    for (mode, mix_type), entries in metadata.items():
        path = out / "wav8k" / mode / "metadata" / f"mixture_{subset}_{mix_type}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, list(entries[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(entries)
        seconds = sum(e["length"] for e in entries) / RATE
        print(f"{len(entries)} mixtures ({seconds / 60:.1f} min) -> {path}")


def build(args) -> None:
    for subset, folder in SUBSETS.items():
        path = args.recipes / f"libri2mix_{subset}.csv"
        if path.is_file():
            build_subset(read_recipe(path), args.corpus / folder, args.out, subset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("recipe", help="draw the mixtures and their gains (needs pyloudnorm)")
    p.add_argument("--corpus", type=Path, required=True, help="corpus/librispeech_8k (valid/ and test/)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-dev", type=int, default=48)
    p.add_argument("--n-test", type=int, default=120)
    p.add_argument("--join-prob", type=float, default=0.5, help="share of test sources made of two utterances")
    p.add_argument("--seed", type=int, default=72)
    p = sub.add_parser("build", help="audio and LibriMix metadata from the recipes")
    p.add_argument("--recipes", type=Path, required=True)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    {"recipe": recipe, "build": build}[args.what](args)


if __name__ == "__main__":
    main()
