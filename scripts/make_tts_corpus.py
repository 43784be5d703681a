#!/usr/bin/env python3
"""Synthetic speech corpus for training the demo model, from Debian's TTS voices (offline).

Speakers are (engine, voice, variant, pitch, rate) combinations of espeak-ng and flite
(`apt install espeak-ng flite wamerican`). Sentences are random word sequences from
/usr/share/dict. Training and held-out splits share neither speakers nor words, so the held-out
split measures separation of voices and sentences the model never saw.

Output: one .npz per split with int16 8 kHz utterances and speaker ids.

    python scripts/make_tts_corpus.py --out data/tts_corpus --train-utterances 6000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 8000
ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "croak",
    "whisperf",
    "Alvin",
    "Andy",
    "Annie",
    "AnxiousAndy",
    "Denis",
    "Gene",
    "Jacky",
    "john",
    "Lee",
    "Mario",
    "Michael",
    "Mr serious",
    "Nguyen",
    "Reed",
    "RicishayMax",
    "Storm",
    "Tweaky",
    "aunty",
    "boris",
    "david",
    "edward",
    "linda",
    "max",
    "michel",
    "norbert",
    "quincy",
    "rob",
    "robert",
    "steph",
    "travis",
    "zac",
]
FLITE_VOICES = ["kal", "awb", "rms", "slt", "kal16"]
#: Held out of training: these variants and one flite voice speak only in the test split.
HELD_OUT_VARIANTS = {"f4", "m6", "Annie", "Gene", "linda", "travis"}
HELD_OUT_FLITE = {"rms"}


def words(path: Path = Path("/usr/share/dict/american-english")) -> list[str]:
    if not path.exists():
        sys.exit(f"error: {path} is missing: apt install wamerican")
    return sorted(
        {
            w.strip().lower()
            for w in path.read_text(errors="ignore").split()
            if w.strip().isalpha() and w.strip().isascii() and 3 <= len(w.strip()) <= 9
        }
    )


def speakers(held_out: bool, rng: random.Random, count: int) -> list[tuple]:
    """(engine, voice, variant, pitch, words-per-minute) tuples."""
    variants = [v for v in ESPEAK_VARIANTS if (v in HELD_OUT_VARIANTS) == held_out]
    flites = [v for v in FLITE_VOICES if (v in HELD_OUT_FLITE) == held_out]
    out = []
    for _ in range(count):
        if rng.random() < 0.2 and flites:
            out.append(("flite", rng.choice(flites), "", 0, 0))
        else:
            out.append(
                ("espeak", rng.choice(ESPEAK_LANGS), rng.choice(variants), rng.randint(15, 85), rng.randint(130, 200))
            )
    return out


def synthesize(speaker: tuple, text: str, workdir: Path, index: int) -> np.ndarray:
    engine, voice, variant, pitch, wpm = speaker
    path = workdir / f"u{index}.wav"
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", f"{voice}+{variant}", "-p", str(pitch), "-s", str(wpm), "-w", str(path), text]
    else:
        cmd = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    audio, rate = sf.read(path, dtype="float32")
    path.unlink()
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = soxr.resample(audio, rate, RATE)
    nonzero = np.flatnonzero(np.abs(audio) > 1e-3)
    if len(nonzero):
        audio = audio[nonzero[0] : nonzero[-1] + 1]  # trim leading/trailing silence
    peak = np.abs(audio).max() or 1.0
    return (audio / peak * 0.9 * 32767).astype(np.int16)


def make_split(name: str, n_utt: int, n_speakers: int, vocab: list[str], held_out: bool, seed: int, out: Path) -> None:
    rng = random.Random(seed)
    spk = speakers(held_out, rng, n_speakers)
    jobs = [
        (rng.randrange(n_speakers), " ".join(rng.choice(vocab) for _ in range(rng.randint(6, 14))))
        for _ in range(n_utt)
    ]
    workdir = Path(tempfile.mkdtemp(prefix=f"tts_{name}_"))
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            audio = list(pool.map(lambda ij: synthesize(spk[ij[1][0]], ij[1][1], workdir, ij[0]), enumerate(jobs)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lengths = np.array([len(a) for a in audio])
    np.savez_compressed(
        out / f"{name}.npz",
        audio=np.concatenate(audio),
        lengths=lengths,
        speaker=np.array([j[0] for j in jobs]),
        speakers=np.array([repr(s) for s in spk]),
    )
    print(f"{name}: {n_utt} utterances, {n_speakers} speakers, {lengths.sum() / RATE / 3600:.2f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-utterances", type=int, default=6000)
    parser.add_argument("--test-utterances", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for tool in ("espeak-ng", "flite"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found: apt install espeak-ng flite wamerican")
    args.out.mkdir(parents=True, exist_ok=True)
    vocab = words()
    train_words, test_words = vocab[0::2], vocab[1::2]  # disjoint vocabularies
    make_split("train", args.train_utterances, 300, train_words, False, args.seed, args.out)
    make_split("test", args.test_utterances, 40, test_words, True, args.seed + 1, args.out)


if __name__ == "__main__":
    main()
