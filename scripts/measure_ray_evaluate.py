#!/usr/bin/env python3
"""`evaluate` of the same mixtures locally and on a Ray cluster of this machine with 1 and 2
workers (CPUs): wall time of each and the 1 -> 2 worker speed-up (docs/benchmarks.md, "Ray";
what the Ray path does: docs/ray.md).

    .venv/bin/python scripts/make_demo_data.py corpus-set --corpus corpus/librispeech_8k/test \\
        --out data/ray40 --n 40 --seconds 4
    .venv/bin/python scripts/measure_ray_evaluate.py --metadata data/ray40/mixture_test_mix_clean.csv \\
        --out docs/measured/ray_evaluate.json

Each Ray worker runs one mixture at a time on one thread (Ray sets OMP_NUM_THREADS=1 for a task
of one CPU); the local executor runs them one at a time in this process on every core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from convtasnet_hailo.assets import DEMO_MODEL
from convtasnet_hailo.commands import evaluate
from convtasnet_hailo.runtime import RunSpec
from convtasnet_hailo.runtime.backend_setup import BackendOptions
from convtasnet_hailo.runtime.sources import ModelChoice, resolve
from convtasnet_hailo.tasks.options import ExecutorOptions


def timed_run(metadata: Path, executor: ExecutorOptions, runs: Path) -> dict:
    started = time.perf_counter()
    spec = RunSpec(source=resolve(ModelChoice(model=str(DEMO_MODEL))), backend=BackendOptions(), tile_w=256)
    result = evaluate.run(evaluate.Request(spec=spec, metadata=metadata, runs_dir=runs, executor=executor))
    evaluate.write(result)
    status = result.exit_status
    wall = time.perf_counter() - started
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "evaluate_summary.json").read_text())
    return {
        "wall_s": round(wall, 2),
        "exit_status": status,
        "n_mixtures": summary["n_mixtures"],
        "si_snri_mean_db": round(summary["si_snri_db"]["mean"], 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import ray

    record = {
        "metadata": args.metadata,
        "model": DEMO_MODEL.name,
        "backend": "torch_proxy",
        "tile_w": 256,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        record["runs"]["local"] = timed_run(Path(args.metadata), ExecutorOptions(), Path(scratch) / "local")
        print("local", record["runs"]["local"], flush=True)
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            try:
                run = timed_run(Path(args.metadata), ExecutorOptions("ray"), Path(scratch) / f"ray{workers}")
            finally:
                ray.shutdown()
            record["runs"][f"ray_{workers}_worker{'s' if workers > 1 else ''}"] = run
            print(f"ray {workers}", run, flush=True)
    runs = record["runs"]
    record["speedup_2_vs_1_ray_workers"] = round(runs["ray_1_worker"]["wall_s"] / runs["ray_2_workers"]["wall_s"], 3)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"1 -> 2 Ray workers: {record['speedup_2_vs_1_ray_workers']}x; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
