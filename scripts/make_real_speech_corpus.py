#!/usr/bin/env python3
"""Builds the real-speech corpus shipped in `corpus/librispeech_8k/` from LibriSpeech utterances
kept in the Resemblyzer repository (Apache-2.0 code; the audio is LibriSpeech, CC BY 4.0).

That repository holds one utterance of each of the 251 train-clean-100 speakers and ten
utterances of each of ten test-other speakers. Each is resampled to 8 kHz, cut to at most
``--max-seconds`` and written as Ogg Vorbis (about a third of FLAC's size; the decoded file is
the training target, so the codec's colouring is part of the speech, not an error).

Splits, by speaker (no speaker is in two of them):
- ``train``: train-clean-100 speakers, minus the validation ones and minus 198, 3436 and 5703
  (the speakers of `make_demo_data.py librispeech-set`, kept unseen);
- ``valid``: every 16th train-clean-100 speaker by id (checkpoint choice only);
- ``test``: the ten test-other speakers (evaluation only).

    git clone https://github.com/resemble-ai/Resemblyzer /tmp/Resemblyzer
    python scripts/make_real_speech_corpus.py --data /tmp/Resemblyzer/audio_data --out corpus/librispeech_8k
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 8000
#: Speakers of the librosa example data (`make_demo_data.py librispeech-set`): never trained on.
KEPT_UNSEEN = {"198", "3436", "5703"}


def split_of(speaker: str, train_speakers: list[str]) -> str | None:
    if speaker in KEPT_UNSEEN:
        return None
    return "valid" if train_speakers.index(speaker) % 16 == 0 else "train"


def convert(source: Path, target: Path, max_seconds: float) -> float:
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    audio = soxr.resample(audio.mean(axis=1), rate, RATE)[: int(max_seconds * RATE)]
    audio = 0.5 * audio / (np.abs(audio).max() + 1e-8)
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, audio.astype(np.float32), RATE, format="OGG", subtype="VORBIS")
    return len(audio) / RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the audio_data/ folder of Resemblyzer")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    args = parser.parse_args()
    train_files = sorted((args.data / "librispeech_train-clean-100").glob("*.flac"))
    train_speakers = sorted({f.name.split("-")[0] for f in train_files}, key=int)
    seconds: dict[str, float] = {"train": 0.0, "valid": 0.0, "test": 0.0}
    for path in train_files:
        split = split_of(path.name.split("-")[0], train_speakers)
        if split:
            seconds[split] += convert(path, args.out / split / f"{path.stem}.ogg", args.max_seconds)
    for path in sorted((args.data / "librispeech_test-other").glob("*/*.flac")):
        seconds["test"] += convert(path, args.out / "test" / f"{path.stem}.ogg", args.max_seconds)
    for split, total in seconds.items():
        speakers = {p.name.split("-")[0] for p in (args.out / split).glob("*.ogg")}
        print(f"{split}: {len(speakers)} speakers, {total / 60:.1f} min")


if __name__ == "__main__":
    main()
