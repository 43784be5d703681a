#!/usr/bin/env python3
"""Builds the enhancement demo's noisy recording from real speech and real-world sounds.

Sources: the librosa example-data repository (https://github.com/librosa/data, files under
``audio/``), each file with its own licence (stated in its ``.txt`` there and in the SOURCE.md
written here):
- clean speech: LibriSpeech 198-209-0000 (CC BY 4.0), seconds 1-7;
- background music: Kevin MacLeod "Vibe Ace" (CC BY 3.0), from second 20;
- a robin's call: InspectorJ, freesound 456440 (CC BY 3.0);
- distant talkers: LibriSpeech 3436-172162-0000 and 5703-47212-0000 (CC BY 4.0);
- a little pink noise (made here, seed 1).
The noise is music at -5 dB, the robin at -8 dB, the talkers at -8 dB and pink noise at -6 dB
relative to the speech, then scaled so the whole noise sits at 0 dB SNR. 16 kHz, PCM 16.

    git clone https://github.com/librosa/data /tmp/librosa-data
    python scripts/make_enhance_demo_data.py --data /tmp/librosa-data/audio \\
        --out src/convtasnet_hailo/assets/demo/enhance
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
SECONDS = 6.0
CLEAN = "198-209-0000.hq.ogg"
MUSIC = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
BIRD = "456440__inspectorj__bird-whistling-robin-single-13.hq.ogg"
TALKERS = ("3436-172162-0000.hq.ogg", "5703-47212-0000.hq.ogg")
#: (file, offset s, level dB below the speech)
MIX = [(MUSIC, 20.0, 5.0), (BIRD, 0.0, 8.0), (TALKERS[0], 2.0, 11.0), (TALKERS[1], 2.0, 11.0)]
PINK_DB = 6.0
SNR_DB = 0.0

SOURCE = """# Enhancement demo recording
`clean.wav`: LibriSpeech 198-209-0000 (Sense and Sensibility, read by Heather Barnett), seconds
1-7, CC BY 4.0 (https://www.openslr.org/12/). `noisy.wav` = `clean.wav` + noise at 0 dB SNR, the
noise being: Kevin MacLeod "Vibe Ace" (CC BY 3.0, Free Music Archive) from second 20; a robin's
call by InspectorJ (freesound 456440, CC BY 3.0) at second 1.5; two distant talkers, LibriSpeech
3436-172162-0000 (read by Anders Lankford) and 5703-47212-0000 (read by Garth Comira), seconds
2-8, CC BY 4.0; pink noise. All taken from the librosa example-data repository
(https://github.com/librosa/data). 16 kHz, PCM 16. Made by `scripts/make_enhance_demo_data.py`.
"""


def load(path: Path, offset: float, seconds: float) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    piece = audio[int(offset * RATE) : int((offset + seconds) * RATE)]
    return np.pad(piece, (0, int(seconds * RATE) - len(piece)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def pink_noise(n: int, seed: int = 1) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    return np.fft.irfft(spectrum, n).astype(np.float32)


def build(data: Path, seconds: float = SECONDS) -> tuple[np.ndarray, np.ndarray]:
    clean = load(data / CLEAN, 1.0, seconds)
    clean *= 0.05 / rms(clean)
    parts = []
    for name, offset, below_db in MIX:
        part = load(data / name, offset, seconds)
        if name == BIRD:  # the call starts 1.5 s in
            part = np.roll(part, int(1.5 * RATE))
        parts.append(part / rms(part) * rms(clean) * 10 ** (-below_db / 20))
    pink = pink_noise(clean.size)
    noise = sum(parts) + pink / rms(pink) * rms(clean) * 10 ** (-PINK_DB / 20)
    noise *= rms(clean) / rms(noise) * 10 ** (-SNR_DB / 20)
    noisy = clean + noise
    scale = 0.9 / max(np.abs(noisy).max(), np.abs(clean).max())
    return (noisy * scale).astype(np.float32), (clean * scale).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the audio/ folder of librosa/data")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--seconds",
        type=float,
        default=SECONDS,
        help=f"length (default {SECONDS:g} s, the shipped one; 10 s for the `noise` timing in docs/benchmarks.md)",
    )
    args = parser.parse_args()
    noisy, clean = build(args.data, args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    sf.write(args.out / "noisy.wav", noisy, RATE, subtype="PCM_16")
    sf.write(args.out / "clean.wav", clean, RATE, subtype="PCM_16")
    (args.out / "SOURCE.md").write_text(SOURCE)
    print(f"wrote {args.out}/noisy.wav and clean.wav ({args.seconds:g} s, {RATE} Hz)")


if __name__ == "__main__":
    main()
