#!/usr/bin/env python3
"""A long 8 kHz test input for memory measurements: the demo mixture repeated to ``--minutes``,
each copy at another level (not one periodic signal), written block by block as a FLOAT WAV (so
that making a 2-hour file does not itself need the file in memory).

    python scripts/make_long_input.py --minutes 120 --out /tmp/mem/long120.wav
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile

from convtasnet_hailo import load_audio
from convtasnet_hailo.assets import DEMO_MIXTURE

RATE = 8000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--out", required=True, help="the WAV to write (keep it out of the repository: /tmp)")
    args = parser.parse_args()
    base = np.asarray(load_audio(DEMO_MIXTURE, RATE))
    total, written = int(args.minutes * 60 * RATE), 0
    levels = np.random.default_rng(0)
    with soundfile.SoundFile(args.out, "w", RATE, 1, "FLOAT", format="WAV") as handle:
        while written < total:
            block = (base * levels.uniform(0.3, 1.0))[: total - written].astype(np.float32)
            handle.write(block)
            written += len(block)
    print(f"{args.out}: {total} samples at {RATE} Hz")


if __name__ == "__main__":
    main()
