#!/usr/bin/env python3
"""Host time per hop of the stateful graph beside the per-hop plan's, in the same run (issue 38).

Both stream the same file hop by hop on onnxruntime with one thread: the stateful graph
(``export/stateful.py``, one call per hop) and the per-hop plan (``StreamingExecutor`` over the
onnxruntime backend, one call per stage per hop). They take turns of ``CHUNK`` hops, so both
see the same load on a shared machine. Printed per plan: p50 / p95 / max host time per hop, RTF, deadline
misses, graph calls per hop, the MACs per hop and the MACs per second achieved at p50, the
thread's CPU time per hop (what the hop computed, without the waits a shared machine adds), beside
this machine's single-thread float32 matrix-multiply rate; and each stream's distance from the
offline model (max |difference| over every sample, and the contract's bound).

    OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/bench_stateful.py [--model M] [--hop-ms 8] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch start their pools

import numpy as np  # noqa: E402

#: Hops each plan streams before the other takes its turn: both see the same load on a shared
#: machine, and each runs with its own data in the caches, as it would alone.
CHUNK = 25


def matmul_rate(size: int = 256, seconds: float = 1.0) -> float:
    """Multiply-accumulates per second of one thread on (size x size) float32 matrix products."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size), dtype=np.float32)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return count * size**3 / (time.perf_counter() - started)


def per_hop_executor(model, hop: int, folder: Path):
    """The per-hop plan on onnxruntime (one thread), as ``Run.streamer`` builds it for that backend."""
    from convtasnet_hailo.export.exporter import export_plan
    from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
    from convtasnet_hailo.runtime.engine import open_backend_named
    from convtasnet_hailo.runtime.stream_executor import StreamingExecutor

    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    export_plan(plan, hop // model.config.stride, folder, {}, report=lambda _: None)
    return StreamingExecutor(plan, open_backend_named("onnxruntime", export_dir=folder, threads=1), hop)


def summary(name: str, seconds: list[float], hop_s: float, calls: float, macs: int) -> str:
    ms = np.array(seconds) * 1e3
    p50 = float(np.percentile(ms, 50))
    return (
        f"{name:10s} p50 {p50:7.3f} ms  p95 {np.percentile(ms, 95):7.3f} ms  max {ms.max():7.3f} ms  "
        f"RTF {ms.sum() / 1e3 / (len(ms) * hop_s):.4f}  misses {int(np.sum(ms > 1e3 * hop_s))}/{len(ms)}  "
        f"calls/hop {calls:.1f}  MACs/hop {macs:,}  GMAC/s at p50 {macs / p50 / 1e6:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    from convtasnet_hailo.assets import DEMO_CAUSAL_MODEL, DEMO_MIXTURE
    from convtasnet_hailo.audio.io import load_audio
    from convtasnet_hailo.export.stateful import export_stateful
    from convtasnet_hailo.model.checkpoint import load_model
    from convtasnet_hailo.parity.compare import diff_tensor
    from convtasnet_hailo.runtime.separator import reference_separation
    from convtasnet_hailo.runtime.stateful_executor import StatefulExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEMO_CAUSAL_MODEL))
    parser.add_argument("--random-preset", help="seeded random weights of a preset instead (e.g. full-8k-causal)")
    parser.add_argument("--hop-ms", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=4.0, help="of the demo mixture (4 s long)")
    args = parser.parse_args(argv)
    if args.random_preset:
        from convtasnet_hailo.model.random_init import random_model
        from convtasnet_hailo.model.source import RANDOM_PRESETS

        model, args.model = random_model(RANDOM_PRESETS[args.random_preset], seed=0), args.random_preset
    else:
        model = load_model(args.model)[0]
    config = model.config
    hop = round(args.hop_ms * config.sample_rate / 1000)
    wav = load_audio(DEMO_MIXTURE, config.sample_rate).wav[: int(args.seconds * config.sample_rate)]
    with tempfile.TemporaryDirectory() as scratch:
        record = export_stateful(model, hop, Path(scratch) / "stateful")
        plans = {
            "stateful": StatefulExecutor.from_folder(Path(scratch) / "stateful", threads=1),
            "per-hop": per_hop_executor(model, hop, Path(scratch) / "per_hop"),
        }
        times = {name: [] for name in plans}
        cpu_times = {name: [] for name in plans}  # this thread's CPU time: the compute without preemption
        pieces = {name: [] for name in plans}
        whole = len(wav) // hop * hop
        for chunk in range(0, whole, CHUNK * hop):
            for name, executor in plans.items():
                for first in range(chunk, min(chunk + CHUNK * hop, whole), hop):
                    started, cpu = time.perf_counter(), time.thread_time()
                    pieces[name].append(executor.push(wav[first : first + hop]))
                    times[name].append(time.perf_counter() - started)
                    cpu_times[name].append(time.thread_time() - cpu)
        for name, executor in plans.items():
            pieces[name].append(executor.finish(wav[whole:]))
    offline = reference_separation(model, wav)
    rate = matmul_rate()
    print(
        f"{Path(args.model).name}: {len(wav)} samples, hop {hop} samples ({1e3 * hop / config.sample_rate:g} ms), "
        f"{len(times['stateful'])} hops, one thread; single-thread 256x256 float32 matmul {rate / 1e9:.2f} GMAC/s"
    )
    calls = {"stateful": 1.0, "per-hop": plans["per-hop"].stage_calls / max(len(times["per-hop"]), 1)}
    for name in plans:
        print(summary(name, times[name], hop / config.sample_rate, calls[name], record.macs_per_hop))
        cpu = np.array(cpu_times[name]) * 1e3
        print(
            f"{'':10s} CPU time of the thread per hop: p50 {np.percentile(cpu, 50):.3f} ms  "
            f"p95 {np.percentile(cpu, 95):.3f} ms  max {cpu.max():.3f} ms  "
            f"GMAC/s at CPU p50 {record.macs_per_hop / np.percentile(cpu, 50) / 1e6:.3f}"
        )
        d = diff_tensor(name, np.concatenate(pieces[name], axis=-1), offline)
        print(
            f"{'':10s} vs offline: {d.max_abs:.3g} max |diff| over {offline.size} samples (bound {d.bound:.3g})"
            f"{'' if d.all_close else '  OUT OF CONTRACT'}"
        )
    ratio = np.percentile(times["stateful"], 50) / np.percentile(times["per-hop"], 50)
    cpu_ratio = np.percentile(cpu_times["stateful"], 50) / np.percentile(cpu_times["per-hop"], 50)
    print(f"stateful p50 / per-hop p50 = {ratio:.4f} (wall), {cpu_ratio:.4f} (CPU time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
