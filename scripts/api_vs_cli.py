#!/usr/bin/env python3
"""The Python API's ``Separator.from_checkpoint(...).separate(x)`` against the `separate` command
on the same long input (both segment by the same policy): max-abs difference and timings.

    python scripts/api_vs_cli.py --minutes 10 --out /tmp/api_vs_cli      # the demo model, torch_proxy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile

from convtasnet_hailo import Separator, load_audio
from convtasnet_hailo.assets import DEMO_MIXTURE, DEMO_MODEL
from convtasnet_hailo.cli import main as cli


def long_input(minutes: float, rate: int) -> np.ndarray:
    """The demo mixture repeated to ``minutes``, each copy at another level (not one periodic signal)."""
    base = load_audio(DEMO_MIXTURE, rate)
    copies = int(np.ceil(minutes * 60 * rate / len(base)))
    levels = np.random.default_rng(0).uniform(0.3, 1.0, copies)
    return np.concatenate([base * level for level in levels])[: int(minutes * 60 * rate)].astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wav = long_input(args.minutes, 8000)
    soundfile.write(args.out / "long.wav", wav, 8000, subtype="FLOAT")
    started = time.perf_counter()
    assert (
        cli(
            [
                "separate",
                str(args.out / "long.wav"),
                "--model",
                args.model,
                "--subtype",
                "FLOAT",
                "--out",
                str(args.out / "cli"),
            ]
        )
        == 0
    )
    cli_seconds = time.perf_counter() - started
    written = np.stack([soundfile.read(path, dtype="float32")[0] for path in sorted((args.out / "cli").glob("*.wav"))])
    started = time.perf_counter()
    with Separator.from_checkpoint(args.model) as separator:
        api = separator.separate_file(args.out / "long.wav")
    api_seconds = time.perf_counter() - started
    record = {
        "minutes": args.minutes,
        "model": args.model,
        "samples": int(len(wav)),
        "max_abs_api_vs_cli": float(np.abs(api - written).max()),
        "peak": float(np.abs(written).max()),
        "cli_seconds": round(cli_seconds, 1),
        "api_seconds": round(api_seconds, 1),
    }
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
