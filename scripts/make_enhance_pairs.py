#!/usr/bin/env python3
"""Builds real 16 kHz noisy/clean pairs for calibrating and judging an enhancement model.

Three sets, in LibriMix's layout (``<set>/mix_single/<id>.wav`` with the clean speech in
``<set>/s1/<id>.wav``), so `noise --calib/--heldout/--audio <set>/mix_single` takes them:

| set | speech (LibriSpeech, 16 kHz as recorded) | noise |
|---|---|---|
| ``calib`` | train-clean-100 speakers | waltz, ragtime, Hungarian dance, Let's Go Fishin, drum and bass, humpback whale; babble of two other train-clean-100 speakers; white or brown noise |
| ``heldout`` | three test-other speakers | Sugar Plum Fairy, a dog (pibble), a trumpet; babble of two other test-other speakers |
| ``eval`` | the other five test-other speakers | the shipped enhancement recording's sources: Vibe Ace (other seconds), the robin, the talkers 3436 and 5703, pink noise |

No recording is in two sets, so audio that judges (held-out, evaluation) is unlike the audio
that calibrates, in speaker and in noise. Speakers 198, 3436 and 5703 (the shipped recording's)
are never the target speech. SNR is drawn uniformly from ``--snr`` (dB); each pair is scaled
to a peak of 0.9. Sources: LibriSpeech from the Resemblyzer repository's ``audio_data/`` (CC BY
4.0), the rest from librosa's example data ``audio/`` (each file's licence in its ``.txt``).

    git clone https://github.com/resemble-ai/Resemblyzer /tmp/Resemblyzer
    git clone https://github.com/librosa/data /tmp/librosa-data
    python scripts/make_enhance_pairs.py --speech /tmp/Resemblyzer/audio_data \\
        --noise /tmp/librosa-data/audio --out /tmp/enh16k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from make_enhance_demo_data import BIRD, MUSIC, RATE, TALKERS, load, pink_noise, rms

KEPT_UNSEEN = {"198", "3436", "5703"}
NOISES = {
    "calib": [
        "147793__setuniman__sweet-waltz-0i-22mi.hq.ogg",
        "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg",
        "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
        "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg",
        "admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
        "glacier-bay-humpback.hq.ogg",
        "babble",
        "white",
        "brown",
    ],
    "heldout": [
        "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
        "pibble.hq.ogg",
        "sorohanro_-_solo-trumpet-06.hq.ogg",
        "babble",
    ],
    "eval": [MUSIC, BIRD, "talkers", "pink"],
}


def speakers(speech: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Each set's target utterances and its babble utterances, no speaker in two of them.

    calib: every other train-clean-100 speaker (one utterance each), babble the rest; heldout:
    test-other speakers 0, 2, 4 (by id), babble 6, 8; eval: speakers 1, 3, 5, 7, 9.
    """
    train = sorted(
        p for p in (speech / "librispeech_train-clean-100").glob("*.flac") if p.name.split("-")[0] not in KEPT_UNSEEN
    )
    test_speakers = sorted(
        (p for p in (speech / "librispeech_test-other").iterdir() if p.is_dir()), key=lambda p: int(p.name)
    )
    test = [sorted(s.glob("*.flac")) for s in test_speakers]
    files = lambda picks: [f for k in picks for f in test[k]]  # noqa: E731
    targets = {"calib": train[0::2], "heldout": files((0, 2, 4)), "eval": files((1, 3, 5, 7, 9))}
    return targets, {"calib": train[1::2], "heldout": files((6, 8)), "eval": []}


def utterance(path: Path, seconds: float, rng: np.random.Generator) -> np.ndarray:
    total = sf.info(path).duration
    return load(path, float(rng.uniform(0.0, max(0.0, total - seconds))), seconds)


def noise_piece(kind: str, noise_dir: Path, babble: list[Path], seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    if kind in ("white", "brown", "pink"):
        white = rng.standard_normal(n)
        if kind == "white":
            return white.astype(np.float32)
        return np.cumsum(white).astype(np.float32) if kind == "brown" else pink_noise(n, int(rng.integers(1 << 30)))
    if kind in ("babble", "talkers"):
        chosen = (
            [noise_dir / t for t in TALKERS]
            if kind == "talkers"
            else [babble[k] for k in rng.choice(len(babble), size=2, replace=False)]
        )
        return sum(_unit(utterance(p, seconds, rng)) for p in chosen)
    piece = utterance(noise_dir / kind, seconds, rng)
    if kind == BIRD:
        piece = np.roll(piece, int(rng.integers(n)))
    return piece


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (rms(x) + 1e-9)


def make_set(name: str, targets: list[Path], babble: list[Path], args, rng) -> list[dict]:
    rows = []
    for k, target in enumerate(rng.choice(len(targets), size=args.count[name], replace=False)):
        clean = _unit(utterance(targets[target], args.seconds, rng))
        kind = NOISES[name][k % len(NOISES[name])]
        noise = _unit(noise_piece(kind, args.noise, babble, args.seconds, rng))
        snr = float(rng.uniform(*args.snr))
        noisy = clean + noise * 10 ** (-snr / 20)
        scale = 0.9 / max(np.abs(noisy).max(), np.abs(clean).max())
        stem = f"{name}_{k:03d}"
        for folder, audio in (("mix_single", noisy), ("s1", clean)):
            (args.out / name / folder).mkdir(parents=True, exist_ok=True)
            sf.write(
                args.out / name / folder / f"{stem}.wav", (audio * scale).astype(np.float32), RATE, subtype="PCM_16"
            )
        rows.append({"id": stem, "speech": targets[target].name, "noise": kind, "snr_db": round(snr, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", type=Path, required=True, help="the audio_data/ folder of Resemblyzer")
    parser.add_argument("--noise", type=Path, required=True, help="the audio/ folder of librosa/data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--snr", type=float, nargs=2, default=(-5.0, 5.0), metavar=("LO", "HI"))
    parser.add_argument("--calib", type=int, default=48, help="calibration pairs (default 48)")
    parser.add_argument("--heldout", type=int, default=8, help="held-out pairs (default 8)")
    parser.add_argument("--eval", type=int, default=8, help="evaluation pairs (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.count = {"calib": args.calib, "heldout": args.heldout, "eval": args.eval}
    rng = np.random.default_rng(args.seed)
    targets, babble = speakers(args.speech)
    manifest = {name: make_set(name, targets[name], babble[name], args, rng) for name in args.count}
    (args.out / "pairs.json").write_text(
        json.dumps({"seconds": args.seconds, "snr_db": args.snr, "seed": args.seed, "sets": manifest}, indent=1)
    )
    print(f"wrote {sum(args.count.values())} pairs under {args.out} ({RATE} Hz, {args.seconds:g} s)")


if __name__ == "__main__":
    main()
