"""Short two-speaker mixtures for measuring `build` (docs/benchmarks.md): N clips of SECONDS cut
from the shipped LibriSpeech test utterances (corpus/librispeech_8k/test, CC BY 4.0), each a sum of
two speakers with its sources beside it (``OUT/mix_clean``, ``OUT/s1``, ``OUT/s2``: pass
``OUT/mix_clean`` to ``build --calib``). Seeded: the same clips every run.

    python scripts/make_build_clips.py OUT [--count 48] [--seconds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "librispeech_8k" / "test"


def _cut(wav: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if len(wav) <= length:
        return np.pad(wav, (0, length - len(wav)))
    start = int(rng.integers(0, len(wav) - length))
    return wav[start : start + length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.ogg"))
    speakers = sorted({f.name.split("-")[0] for f in files})
    rng = np.random.default_rng(0)
    length = int(args.seconds * 8000)
    for folder in ("mix_clean", "s1", "s2"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    for index in range(args.count):
        first, second = rng.choice(len(speakers), size=2, replace=False)
        pair = [rng.choice([f for f in files if f.name.startswith(speakers[k] + "-")]) for k in (first, second)]
        sources = [_cut(sf.read(str(path), dtype="float32")[0], length, rng) for path in pair]
        name = f"clip{index:03d}.wav"
        for folder, wav in (("s1", sources[0]), ("s2", sources[1]), ("mix_clean", sources[0] + sources[1])):
            sf.write(str(args.out / folder / name), wav, 8000, subtype="FLOAT")
    print(f"{args.count} mixtures of {args.seconds:g} s in {args.out / 'mix_clean'}")


if __name__ == "__main__":
    main()
