"""Runs every default case of `parity decoder|masker|full-chain` on torch_proxy and onnxruntime,
with and without --block-chan 64, and prints the README's margin table (issue 11).

    .venv/bin/python scripts/parity_margins.py --runs-dir /tmp/margins [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from convtasnet_hailo.cli import main as cli
from convtasnet_hailo.tolerances import REQUIRED_MARGIN

PATHS = ("decoder", "masker", "full-chain")
BACKENDS = ("torch_proxy", "onnxruntime")
BLOCKS = (None, 64)


def run_one(path: str, backend: str, block_chan: int | None, runs_dir: Path) -> dict:
    root = runs_dir / f"{path}_{backend}_{block_chan or 'none'}"
    argv = ["parity", path, "--backend", backend, "--runs-dir", str(root)]
    if block_chan:
        argv += ["--block-chan", str(block_chan)]
    started = time.perf_counter()
    code = cli(argv)
    seconds = time.perf_counter() - started
    (run_dir,) = [d for d in root.iterdir() if d.is_dir()]
    records = [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]
    tightest = min(records, key=lambda r: r["min_margin"])
    return {"path": path, "backend": backend, "block_chan": block_chan, "exit": code, "cases": len(records),
            "passed": sum(r["all_close"] for r in records), "min_margin": tightest["min_margin"],
            "stage": tightest["min_margin_stage"], "case": tightest["run_tag"],
            "max_abs": tightest[f"{tightest['min_margin_stage']}_max_abs"],
            "bound": tightest[f"{tightest['min_margin_stage']}_bound"],
            "largest_max_rel": max(r["max_rel"] for r in records), "seconds": round(seconds, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| path | backend | --block-chan | cases passed | smallest margin (bound / max_abs) | at stage (case) "
             "| max_abs / bound | largest max_rel | wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['path']} | {r['backend']} | {r['block_chan'] or '-'} | {r['passed']}/{r['cases']} | "
                     f"{r['min_margin']:.1f}x | {r['stage']} ({r['case']}) | {r['max_abs']:.2e} / {r['bound']:.2e} | "
                     f"{r['largest_max_rel']:.1e} | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="also write the table and the rows (JSON) here")
    args = parser.parse_args()
    rows = [run_one(p, b, c, args.runs_dir) for p in PATHS for b in BACKENDS for c in BLOCKS]
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    ok = all(r["exit"] == 0 and r["min_margin"] >= REQUIRED_MARGIN for r in rows)
    print(f"every case passes with >= {REQUIRED_MARGIN:g}x margin: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
