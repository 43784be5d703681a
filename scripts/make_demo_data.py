#!/usr/bin/env python3
"""Builds the demo's real-speech data and LibriMix-format evaluation sets (offline after one
`pip download`).

Real speech: `pyannote/audio/sample/sample.wav` from the pyannote.audio wheel on PyPI (MIT
licence; 30 s, 16 kHz, two speakers, with an RTTM of who speaks when). Regions where exactly
one speaker talks are cut, resampled to 8 kHz, RMS-normalized and mixed at 0 dB.

    pip download --no-deps pyannote.audio==3.3.2 -d /tmp/pya
    python scripts/make_demo_data.py shipped --wheel /tmp/pya/pyannote_audio-3.3.2-py2.py3-none-any.whl \\
        --out src/convtasnet_hailo/assets/demo
    python scripts/make_demo_data.py real-set --wheel ... --out data/real_librimix
    python scripts/make_demo_data.py tts-set --corpus data/tts_corpus/test.npz --n 100 --out data/tts_librimix
    git clone https://github.com/librosa/data /tmp/librosa-data   # three LibriSpeech speakers, CC BY 4.0
    python scripts/make_demo_data.py librispeech-set --data /tmp/librosa-data/audio --out data/librispeech_pairs
    python scripts/make_demo_data.py corpus-set --corpus corpus/librispeech_8k/test --n 100 --out data/test_other_mixes
"""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 8000
SAMPLE = "pyannote/audio/sample/sample.wav"
RTTM = "pyannote/audio/sample/sample.rttm"


def read_wheel(wheel: Path) -> tuple[np.ndarray, int, list[tuple[float, float, str]]]:
    with zipfile.ZipFile(wheel) as archive:
        audio, rate = sf.read(io.BytesIO(archive.read(SAMPLE)), dtype="float32")
        turns = []
        for line in archive.read(RTTM).decode().splitlines():
            fields = line.split()
            turns.append((float(fields[3]), float(fields[3]) + float(fields[4]), fields[7]))
    return audio, rate, turns


def solo_regions(turns: list[tuple[float, float, str]], margin: float = 0.05) -> dict[str, list[tuple[float, float]]]:
    """Intervals where exactly one speaker talks, per speaker."""
    out: dict[str, list[tuple[float, float]]] = {}
    for start, end, who in turns:
        others = [(s, e) for s, e, w in turns if w != who and s < end and e > start]
        pieces = [(start, end)]
        for o_start, o_end in others:
            pieces = [p for s, e in pieces for p in ((s, min(e, o_start)), (max(s, o_end), e)) if p[1] - p[0] > 0]
        out.setdefault(who, []).extend((s + margin, e - margin) for s, e in pieces if e - s > 1.0)
    return out


def cut(audio: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    piece = audio[int(start * rate) : int(end * rate)]
    piece = soxr.resample(piece, rate, RATE).astype(np.float32)
    return piece / (np.sqrt(np.mean(piece**2)) + 1e-8)


def mix(s1: np.ndarray, s2: np.ndarray, peak: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = min(len(s1), len(s2))
    s1, s2 = s1[:length], s2[:length]
    scale = peak / np.abs(s1 + s2).max()
    return s1 * scale, s2 * scale, (s1 + s2) * scale


def write_librimix(out: Path, items: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    """LibriMix layout wav8k/min/test/{mix_clean,s1,s2}/<id>.wav + metadata/mixture_test_mix_clean.csv."""
    base = out / "wav8k" / "min" / "test"
    rows = []
    for mixture_id, s1, s2, mixture in items:
        for folder, wav in (("mix_clean", mixture), ("s1", s1), ("s2", s2)):
            (base / folder).mkdir(parents=True, exist_ok=True)
            sf.write(base / folder / f"{mixture_id}.wav", wav, RATE, subtype="FLOAT")
        rows.append(
            {
                "mixture_ID": mixture_id,
                "mixture_path": str((base / "mix_clean" / f"{mixture_id}.wav").resolve()),
                "source_1_path": str((base / "s1" / f"{mixture_id}.wav").resolve()),
                "source_2_path": str((base / "s2" / f"{mixture_id}.wav").resolve()),
                "length": len(mixture),
            }
        )
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    csv_path = out / "metadata" / "mixture_test_mix_clean.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} mixtures -> {csv_path}")
    return csv_path


def shipped(args) -> None:
    audio, rate, turns = read_wheel(args.wheel)
    regions = solo_regions(turns)
    (a_start, a_end), (b_start, b_end) = (
        max(regions["speaker90"], key=lambda r: r[1] - r[0]),
        max(regions["speaker91"], key=lambda r: r[1] - r[0]),
    )
    seconds = min(a_end - a_start, b_end - b_start, args.seconds)
    s1, s2, mixture = mix(cut(audio, rate, a_start, a_start + seconds), cut(audio, rate, b_start, b_start + seconds))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, wav in (("mixture", mixture), ("s1", s1), ("s2", s2)):
        sf.write(args.out / f"{name}.wav", wav, RATE, subtype="PCM_16")
    (args.out / "SOURCE.md").write_text(
        "# Demo mixture\n"
        f"`s1.wav`: speaker90, seconds {a_start:.2f}-{a_start + seconds:.2f}; `s2.wav`: speaker91, seconds "
        f"{b_start:.2f}-{b_start + seconds:.2f} of `{SAMPLE}` in the pyannote.audio 3.3.2 wheel on PyPI "
        "(MIT licence, Copyright (c) CNRS). Resampled to 8 kHz, RMS-normalized, mixed at 0 dB: "
        "`mixture.wav` = s1 + s2. Made by `scripts/make_demo_data.py shipped`.\n"
    )
    print(f"wrote {args.out}/mixture.wav, s1.wav, s2.wav ({seconds:.2f} s)")


def shipped_from_set(args) -> None:
    """The demo mixture copied from a LibriMix-format evaluation set (``--id`` names the mixture),
    as 16-bit WAVs with a SOURCE.md saying where it comes from and why it was chosen."""
    base = args.set / "wav8k" / "min" / "test"
    args.out.mkdir(parents=True, exist_ok=True)
    for folder, name in (("mix_clean", "mixture"), ("s1", "s1"), ("s2", "s2")):
        wav, rate = sf.read(base / folder / f"{args.id}.wav", dtype="float32")
        sf.write(args.out / f"{name}.wav", wav, rate, subtype="PCM_16")
    first, second = args.id.split("_")[:2]
    (args.out / "SOURCE.md").write_text(
        "# Demo mixture\n"
        f"`s1.wav`: LibriSpeech utterance {first}, `s2.wav`: {second} (test-other speakers, CC BY 4.0: Panayotov "
        "et al., https://www.openslr.org/12; via `corpus/librispeech_8k/test`, see its SOURCE.md): 4 s of each, "
        f"8 kHz, RMS-equalized, mixed at 0 dB: `mixture.wav` = s1 + s2. It is mixture `{args.id}` of the "
        "100-mixture evaluation set `make_demo_data.py corpus-set --corpus corpus/librispeech_8k/test --n 100`, "
        f"chosen as {args.why}. Neither speaker is in the demo model's training or validation data. Made by "
        "`scripts/make_demo_data.py shipped-from-set`.\n"
    )
    print(f"wrote {args.out}/mixture.wav, s1.wav, s2.wav")


def real_set(args) -> None:
    audio, rate, turns = read_wheel(args.wheel)
    regions = solo_regions(turns)
    a_regions, b_regions = regions["speaker90"], regions["speaker91"]
    items, seconds = [], args.seconds
    for i, (a_start, a_end) in enumerate(a_regions):
        for j, (b_start, b_end) in enumerate(b_regions):
            length = min(a_end - a_start, b_end - b_start, seconds)
            if length < 1.0:
                continue
            s1, s2, mixture = mix(
                cut(audio, rate, a_start, a_start + length), cut(audio, rate, b_start, b_start + length)
            )
            items.append((f"spk90r{i}_spk91r{j}", s1, s2, mixture))
    write_librimix(args.out, items)


def tts_set(args) -> None:
    data = np.load(args.corpus)
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
    speaker = data["speaker"]
    rng = np.random.default_rng(args.seed)
    items = []
    while len(items) < args.n:
        a, b = rng.integers(len(speaker), size=2)
        if speaker[a] == speaker[b]:
            continue
        s1 = data["audio"][offsets[a] : offsets[a + 1]].astype(np.float32) / 32768
        s2 = data["audio"][offsets[b] : offsets[b + 1]].astype(np.float32) / 32768
        s1, s2 = s1 / (np.sqrt(np.mean(s1**2)) + 1e-8), s2 / (np.sqrt(np.mean(s2**2)) + 1e-8)
        items.append((f"tts{a}_tts{b}", *mix(s1, s2)))
    write_librimix(args.out, items)


#: LibriSpeech utterances in the librosa example-data repository (CC BY 4.0), three speakers
#: (198 female, 3436 and 5703 male) none of the demo model saw.
LIBRISPEECH = ("198-209-0000.hq.ogg", "3436-172162-0000.hq.ogg", "5703-47212-0000.hq.ogg")


def librispeech_set(args) -> None:
    """Every pair of the three speakers, ``--per-pair`` non-overlapping stretches of each, at 0 dB."""
    voices = {}
    for name in LIBRISPEECH:
        audio, rate = sf.read(args.data / name, dtype="float32", always_2d=True)
        voices[name.split("-")[0]] = soxr.resample(audio.mean(axis=1), rate, RATE).astype(np.float32)
    items, step = [], int(args.seconds * RATE)
    names = sorted(voices)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for k in range(args.per_pair):
                s1, s2 = voices[a][k * step : (k + 1) * step], voices[b][(k + 1) * step : (k + 2) * step]
                s1, s2 = s1 / (np.sqrt(np.mean(s1**2)) + 1e-8), s2 / (np.sqrt(np.mean(s2**2)) + 1e-8)
                items.append((f"ls{a}s{k}_ls{b}s{k + 1}", *mix(s1, s2)))
    write_librimix(args.out, items)


def corpus_set(args) -> None:
    """``--n`` mixtures of two different speakers of a corpus folder (``<speaker>-...ogg``): a
    ``--seconds`` stretch of one utterance of each (random, seeded), RMS-equalized, at 0 dB."""
    files = sorted(args.corpus.glob("*.ogg"))
    speakers = np.array([f.name.split("-")[0] for f in files])
    rng = np.random.default_rng(args.seed)
    step = int(args.seconds * RATE)
    items = []
    while len(items) < args.n:
        a, b = rng.integers(len(files), size=2)
        if speakers[a] == speakers[b]:
            continue
        pieces = []
        for index in (a, b):
            audio, rate = sf.read(files[index], dtype="float32")
            audio = soxr.resample(audio, rate, RATE).astype(np.float32) if rate != RATE else audio
            start = int(rng.integers(0, max(1, len(audio) - step)))
            piece = audio[start : start + step]
            pieces.append(piece / (np.sqrt(np.mean(piece**2)) + 1e-8))
        items.append((f"{files[a].stem}_{files[b].stem}_{len(items)}", *mix(*pieces)))
    write_librimix(args.out, items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("shipped", "real-set"):
        p = sub.add_parser(name)
        p.add_argument("--wheel", type=Path, required=True, help="pyannote.audio wheel from `pip download`")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--seconds", type=float, default=4.0 if name == "shipped" else 3.0)
    p = sub.add_parser("tts-set")
    p.add_argument("--corpus", type=Path, required=True, help="test.npz from make_tts_corpus.py")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("shipped-from-set")
    p.add_argument("--set", type=Path, required=True, help="the --out folder of corpus-set")
    p.add_argument("--id", required=True, help="mixture ID in that set")
    p.add_argument("--why", required=True, help="how it was chosen (written into SOURCE.md)")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("corpus-set")
    p.add_argument(
        "--corpus", type=Path, required=True, help="a folder of <speaker>-*.ogg, e.g. corpus/librispeech_8k/test"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("librispeech-set")
    p.add_argument("--data", type=Path, required=True, help="the audio/ folder of librosa/data")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--per-pair", type=int, default=3)
    args = parser.parse_args()
    {
        "shipped": shipped,
        "real-set": real_set,
        "tts-set": tts_set,
        "librispeech-set": librispeech_set,
        "corpus-set": corpus_set,
        "shipped-from-set": shipped_from_set,
    }[args.what](args)


if __name__ == "__main__":
    main()
