#!/usr/bin/env python3
"""Runs `convtasnet-hailo bench` for the shipped demo model and the full-size 8 kHz model and
keeps the results with the machine they ran on:

    .venv/bin/python benchmarks/run_benchmarks.py            # writes benchmarks/results/<date>_<host>_*.json/png

Run it on an otherwise idle machine; the bench table of docs/benchmarks.md comes from these files.
"""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {
    "demo": ["--model", str(HERE.parent / "src/convtasnet_hailo/assets/demo/convtasnet_demo_8k.pth")],
    # the full-size model also times its 64-channel-block plan and a 10-minute `separate` run (memory goal)
    "full8k": ["--random-preset", "full-8k", "--block-chan", "64", "--long-seconds", "600"],
}


def main() -> int:
    stamp = f"{datetime.date.today():%Y%m%d}_{platform.node() or 'host'}"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    status = 0
    for name, model in CASES.items():
        command = [sys.executable, "-m", "convtasnet_hailo.cli", "bench", *model, "--seconds", "10", "--tile-w", "256",
                   "--repeats", "3", "--json", str(out / f"{stamp}_{name}.json")]
        print("$", " ".join(command), flush=True)
        status = max(status, subprocess.call(command))
    return status


if __name__ == "__main__":
    sys.exit(main())
