#!/usr/bin/env python3
"""Builds the 16 kHz corpus the causal denoiser trains on (`train_demo_model.py --denoise`): clean
read speech and licensed noise recordings, split so that no speaker and no noise recording is in
two of train / valid (checkpoint choice) / test (the final benchmark).

| split | speech (LibriSpeech, 16 kHz as recorded, CC BY 4.0) | noise recordings |
|---|---|---|
| ``train`` | the train-clean-100 speakers (one utterance each), minus 198, 3436 and 5703 | librosa: Hungarian dance, Let's Go Fishin, humpback whale; OpenSFX: every sound of 0.5 s or more not listed below; babble of other train speakers (mixed on the fly) |
| ``valid`` | test-other speakers 0, 2, 4 (sorted by id) | librosa: Sugar Plum Fairy, a trumpet; OpenSFX: helicopter, applause, chainsaw, wind (two cuts of one recording); babble of test-other speakers 6, 8 |
| ``test`` | test-other speakers 1, 3, 5, 7, 9 | librosa: Vibe Ace, a robin, the talkers 3436 and 5703 (the shipped enhancement recording's noise sources); OpenSFX: mining machinery, jackhammer, sawmill, jet take-off, monkeys; synthetic noise in 10% of the pairs |

The splits follow `make_enhance_pairs.py` (its ``heldout`` speakers validate here, its ``eval``
speakers test). OpenSFX sounds cut from one original recording stay in one split. librosa's
recordings under a non-commercial licence (the waltz, the ragtime, the drum and bass, the dog) are
left out (refused if listed), so the trained model owes nothing to them. Synthetic
noise (white, pink, brown, mains hum) is a training supplement only (drawn in the trainer).

Sources and licences:
- LibriSpeech utterances from the Resemblyzer repository's ``audio_data/`` (github
  resemble-ai/Resemblyzer; audio CC BY 4.0, openslr.org/12);
- librosa's example data ``audio/`` (github librosa/data; each file's licence in its ``.txt``:
  CC BY 3.0 / CC BY 4.0 / public domain);
- OpenSFX 1.0.3, the Debian package ``openttd-opensfx`` (``apt-get download openttd-opensfx``):
  recordings from freesound.org edited for OpenTTD, each CC BY 3.0, CC BY-SA 3.0 or CC0 (its
  ``opensfx.cat`` names each sound's original, author and licence; the collection is CC BY-SA 3.0).
  Read straight from ``opensfx.cat`` (a table of (offset, size) pairs, then per sound a
  length-prefixed name and a RIFF WAV file; 44.1 kHz mono, resampled to 16 kHz here).

Written under ``--out``: ``speech_<split>.npz`` and ``noise_<split>.npz`` (int16 ``audio``
concatenated, ``lengths``, ``names``, and for speech ``speaker``), the fixed ``valid`` and
``test`` noisy sets in LibriMix's layout (``<split>/mix_single/<id>.wav`` with the clean target in
``<split>/s1/<id>.wav``, 4 s, SNR -5..15 dB; half of the valid pairs in simulated rooms as in
training, the test pairs in none by default: `denoise_data.py`'s room target is the direct path and
early reflections, a dereverberation the peers in the benchmark are not trained for) and ``corpus.json``
(every file, split and licence).

    git clone https://github.com/resemble-ai/Resemblyzer /tmp/Resemblyzer
    git clone https://github.com/librosa/data /tmp/librosa-data
    (cd /tmp && apt-get download openttd-opensfx && dpkg-deb -x openttd-opensfx_*.deb opensfx)
    python scripts/make_denoise_corpus.py --speech /tmp/Resemblyzer/audio_data --librosa /tmp/librosa-data/audio \\
        --opensfx /tmp/opensfx/usr/share/games/openttd/baseset/opensfx/opensfx.cat --out /work/runs_denoiser/corpus
"""

from __future__ import annotations

import argparse
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
KEPT_UNSEEN = {"198", "3436", "5703"}
LIBROSA = {
    "train": [
        "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
        "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg",
        "glacier-bay-humpback.hq.ogg",
    ],
    "valid": [
        "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
        "sorohanro_-_solo-trumpet-06.hq.ogg",
    ],
    "test": [
        "Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
        "456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
        "3436-172162-0000.hq.ogg",
        "5703-47212-0000.hq.ogg",
    ],
}
#: OpenSFX sounds (index in opensfx.cat) held out; every other sound of 0.5 s or more trains.
OPENSFX = {"valid": [24, 29, 52, 56, 57], "test": [11, 33, 40, 61, 68]}
#: test-other speakers by position in id order: (target speakers, babble speakers) per split.
TEST_OTHER = {"valid": ((0, 2, 4), (6, 8)), "test": ((1, 3, 5, 7, 9), ())}


def read_audio(source, offset: float = 0.0) -> np.ndarray:
    """Mono float32 at 16 kHz from a path or file-like object."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    return audio[int(offset * RATE) :]


def opensfx_sounds(cat: Path) -> list[tuple[int, str, np.ndarray]]:
    """(index, description with licence, audio) of every sound in an OpenTTD ``.cat`` sound set."""
    data = cat.read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    sounds = []
    for index in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * index)
        offset &= 0x7FFFFFFF
        name_length = data[offset]
        name = data[offset + 1 : offset + 1 + name_length].rstrip(b"\0").decode("latin-1")
        riff = data[offset + 1 + name_length : offset + size]
        if riff[:4] != b"RIFF":  # the set's empty placeholder sounds
            continue
        sounds.append((index, name, read_audio(io.BytesIO(riff))))
    return sounds


def _licence(text: str) -> str:
    match = re.search(r"License: ([^.]+)", text)
    return match.group(1).strip() if match else "see opensfx.cat"


def speech_splits(speech: Path) -> dict[str, list[Path]]:
    """The target utterances of each split and the valid babble utterances (``valid_babble``)."""
    train = sorted(
        p for p in (speech / "librispeech_train-clean-100").glob("*.flac") if p.name.split("-")[0] not in KEPT_UNSEEN
    )
    test_speakers = sorted(
        (p for p in (speech / "librispeech_test-other").iterdir() if p.is_dir()), key=lambda p: int(p.name)
    )
    files = lambda picks: [f for k in picks for f in sorted(test_speakers[k].glob("*.flac"))]  # noqa: E731
    return {
        "train": train,
        "valid": files(TEST_OTHER["valid"][0]),
        "valid_babble": files(TEST_OTHER["valid"][1]),
        "test": files(TEST_OTHER["test"][0]),
    }


def save_set(path: Path, waves: list[np.ndarray], names: list[str], speakers: list[int] | None = None) -> None:
    audio = np.concatenate([np.round(np.clip(w, -1, 1) * 32767).astype(np.int16) for w in waves])
    extra = {"speaker": np.array(speakers)} if speakers is not None else {}
    np.savez(path, audio=audio, lengths=np.array([len(w) for w in waves]), names=np.array(names), **extra)


def noise_splits(librosa: Path, cat: Path) -> tuple[dict[str, list[tuple[str, np.ndarray]]], list[dict]]:
    """Each split's named noise recordings, and the manifest rows (file, split, licence)."""
    splits: dict[str, list[tuple[str, np.ndarray]]] = {s: [] for s in ("train", "valid", "test")}
    rows = []
    for split, names in LIBROSA.items():
        for name in names:
            splits[split].append((name, read_audio(librosa / name)))
            note = (librosa / name.replace(".hq.ogg", ".txt")).read_text(errors="replace").strip()
            if re.search(r"\bNC\b|Noncommercial|Non-commercial", note, re.IGNORECASE):
                raise SystemExit(f"{name} is licensed for non-commercial use only: keep it out of the corpus")
            rows.append({"source": "librosa/data audio", "file": name, "split": split, "licence": note})
    held = {index: split for split, indices in OPENSFX.items() for index in indices}
    for index, name, audio in opensfx_sounds(cat):
        split = held.get(index, "train")
        if split == "train" and len(audio) < RATE // 2:
            continue
        splits[split].append((f"opensfx_{index:02d}", audio))
        rows.append(
            {
                "source": "OpenSFX 1.0.3 (Debian openttd-opensfx)",
                "file": f"opensfx.cat #{index}",
                "split": split,
                "description": name,
                "licence": _licence(name),
            }
        )
    return splits, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", type=Path, required=True, help="the audio_data/ folder of Resemblyzer")
    parser.add_argument("--librosa", type=Path, required=True, help="the audio/ folder of librosa/data")
    parser.add_argument("--opensfx", type=Path, required=True, help="opensfx.cat of the openttd-opensfx package")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--valid", type=int, default=48, help="fixed validation pairs (default 48)")
    parser.add_argument("--test", type=int, default=64, help="fixed test pairs (default 64)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the fixed pairs")
    parser.add_argument(
        "--test-reverb-prob",
        type=float,
        default=0.0,
        help="share of test pairs in simulated rooms (default 0: the target is then exactly the speech "
        "under the noise, the same task for every denoiser)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from denoise_data import write_fixed_set

    args.out.mkdir(parents=True, exist_ok=True)
    speech = speech_splits(args.speech)
    noise, rows = noise_splits(args.librosa, args.opensfx)
    manifest = {"rate": RATE, "noise": rows, "speech": {}}
    for split in ("train", "valid", "test", "valid_babble"):
        waves = [read_audio(p) for p in speech[split]]
        save_set(
            args.out / f"speech_{split}.npz",
            waves,
            [p.name for p in speech[split]],
            [int(p.name.split("-")[0]) for p in speech[split]],
        )
        manifest["speech"][split] = {
            "files": [p.name for p in speech[split]],
            "speakers": sorted({int(p.name.split("-")[0]) for p in speech[split]}),
            "minutes": round(sum(len(w) for w in waves) / RATE / 60, 2),
        }
    for split, items in noise.items():
        save_set(args.out / f"noise_{split}.npz", [a for _, a in items], [n for n, _ in items])
        manifest[f"noise_{split}_minutes"] = round(sum(len(a) for _, a in items) / RATE / 60, 2)
    manifest["speech_licence"] = "LibriSpeech, CC BY 4.0 (openslr.org/12), via github resemble-ai/Resemblyzer"
    rng = np.random.default_rng(args.seed)
    for split, count, babble, rooms in (
        ("valid", args.valid, "valid_babble", 0.5),
        ("test", args.test, None, args.test_reverb_prob),
    ):
        manifest[f"{split}_pairs"] = write_fixed_set(
            args.out, split, count, args.seconds, rng, babble_set=babble, reverb_prob=rooms
        )
    (args.out / "corpus.json").write_text(json.dumps(manifest, indent=1))
    print(
        f"wrote the corpus under {args.out}: "
        + ", ".join(f"{k} {v['minutes']} min" for k, v in manifest["speech"].items())
        + "; noise "
        + ", ".join(f"{s} {manifest[f'noise_{s}_minutes']} min" for s in noise)
    )


if __name__ == "__main__":
    main()
