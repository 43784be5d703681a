"""Runs every default case of `parity decoder|masker|full-chain` on torch_proxy and onnxruntime,
with the default plan, with --block-chan 64 and with the float plan (--gln-in-stages --halo-edges
--skip-sums-in-stages), and prints the margin table of docs/measured/parity_margins.md (issue 11).

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
#: plan layouts: (label in the table, flags)
LAYOUTS = (
    ("-", ()),
    ("--block-chan 64", ("--block-chan", "64")),
    ("float plan", ("--gln-in-stages", "--halo-edges", "--skip-sums-in-stages")),
)


def run_one(path: str, backend: str, layout: tuple[str, tuple[str, ...]], runs_dir: Path) -> dict:
    label, flags = layout
    root = runs_dir / f"{path}_{backend}_{label.strip('-').replace(' ', '_') or 'default'}"
    argv = ["parity", "--random-preset", "full-8k", path, "--backend", backend, "--runs-dir", str(root), *flags]
    started = time.perf_counter()
    code = cli(argv)
    seconds = time.perf_counter() - started
    (run_dir,) = [d for d in root.iterdir() if d.is_dir()]
    records = [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]
    tightest = min(records, key=lambda r: r["min_margin"])
    return {
        "path": path,
        "backend": backend,
        "plan": label,
        "exit": code,
        "cases": len(records),
        "passed": sum(r["all_close"] for r in records),
        "min_margin": tightest["min_margin"],
        "stage": tightest["min_margin_stage"],
        "case": tightest["run_tag"],
        "max_abs": tightest[f"{tightest['min_margin_stage']}_max_abs"],
        "bound": tightest[f"{tightest['min_margin_stage']}_bound"],
        "largest_max_rel": max(r["max_rel"] for r in records),
        "seconds": round(seconds, 1),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| path | backend | plan | cases passed | smallest margin (bound / max_abs) | at stage (case) "
        "| max_abs / bound | largest max_rel | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {r['backend']} | {r['plan']} | {r['passed']}/{r['cases']} | "
            f"{r['min_margin']:.1f}x | {r['stage']} ({r['case']}) | {r['max_abs']:.2e} / {r['bound']:.2e} | "
            f"{r['largest_max_rel']:.1e} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="also write the table and the rows (JSON) here")
    args = parser.parse_args()
    rows = [run_one(p, b, layout, args.runs_dir) for p in PATHS for b in BACKENDS for layout in LAYOUTS]
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
