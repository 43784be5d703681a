"""`bench --stream`: each streaming plan of a causal model timed hop by hop on this machine's CPU,
beside the machine's own single-thread matrix-multiply rate (the arithmetic limit).

Per hop size, thread count and plan (``runtime.stream_plans``): host time per hop (p50, p95,
max; and the process's CPU time per hop at p50, what a loaded machine does not inflate), the
RTF, deadline misses, calls per hop, the model's multiply-accumulates per hop
(``export.stateful.macs_per_hop``: the same useful work for every plan; the windows recompute
more) and the MACs per second achieved at the p50 hop, as a share of the limit. The plans stream
the same speech-like audio taking turns of ``CHUNK`` hops, so all see the same load on a shared
machine; each of ``repeats`` passes gives its statistics and the record keeps their medians. The
limit is the higher of numpy's (OpenBLAS, one thread, in a child process) and onnxruntime's
(MLAS, one thread) rate on 256 x 256 float32 products, measured after each group of streams; the
fastest measurement of each counts (the one least slowed by other work on a shared machine).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..model.source import ModelSource

log = logging.getLogger(__name__)

#: Hops each plan streams before the next takes its turn (the same load for all of them).
CHUNK = 25
#: Untimed hops each executor streams first (sessions, arenas and caches warm).
WARM_UP_HOPS = 10
MATMUL_SIZE = 256
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_NUMPY_RATE = """
import time, numpy as np
a, b = np.random.default_rng(0).standard_normal((2, {n}, {n}), dtype=np.float32)
a @ b
count, started = 0, time.perf_counter()
while time.perf_counter() - started < {seconds}:
    a @ b
    count += 1
print(count * {n} ** 3 / (time.perf_counter() - started))
"""


@dataclasses.dataclass(frozen=True)
class StreamBenchSpec:
    """``bench --stream``: ``seconds`` of speech-like audio streamed ``repeats`` times by each of
    ``plans`` (None: every plan the model allows) at each hop of ``hops_ms`` and thread count."""

    source: ModelSource
    hops_ms: tuple[float, ...]
    threads: tuple[int, ...] = (1,)
    plans: tuple[str, ...] | None = None
    seconds: float = 10.0
    repeats: int = 3

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.repeats < 1 or not self.hops_ms:
            raise UserError("--seconds must be > 0, --repeats >= 1, and --stream needs at least one hop (ms)")
        if any(t < 1 for t in self.threads):
            raise UserError(f"--threads {list(self.threads)}: use positive thread counts")


def numpy_matmul_rate(size: int = MATMUL_SIZE, seconds: float = 0.5) -> float:
    """Multiply-accumulates per second of numpy's BLAS on one thread (a child process started
    with every BLAS thread variable at 1, so this process's pools do not count)."""
    env = dict(os.environ, **dict.fromkeys(_THREAD_VARIABLES, "1"))
    done = subprocess.run(
        [sys.executable, "-c", _NUMPY_RATE.format(n=size, seconds=seconds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(done.stdout.strip())


def onnxruntime_matmul_rate(size: int = MATMUL_SIZE, seconds: float = 0.5) -> float:
    """Multiply-accumulates per second of one onnxruntime MatMul session on one thread."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"a": rng.standard_normal((size, size), dtype=np.float32)}
    session.run(None, feed)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, feed)
        count += 1
    return count * size**3 / (time.perf_counter() - started)


def _pass(streams: list, wav: np.ndarray) -> dict[str, list[tuple[float, float]]]:
    """Every stream pushes ``wav`` hop by hop, taking turns of ``CHUNK`` hops; by plan, each hop's
    (wall seconds, the process's CPU seconds: its compute, without the time a shared machine gave
    to others)."""
    hop = streams[0].executor.hop
    whole = len(wav) // hop * hop
    seconds: dict[str, list[tuple[float, float]]] = {s.plan: [] for s in streams}
    for chunk in range(0, whole, CHUNK * hop):
        for stream in streams:
            for first in range(chunk, min(chunk + CHUNK * hop, whole), hop):
                started, cpu = time.perf_counter(), time.process_time()
                stream.executor.push(wav[first : first + hop])
                seconds[stream.plan].append((time.perf_counter() - started, time.process_time() - cpu))
    return seconds


def _statistics(seconds: list[tuple[float, float]], hop_s: float) -> dict:
    ms, cpu_ms = (np.array(column) * 1e3 for column in zip(*seconds, strict=True))
    return {
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "rtf": float(ms.sum() / 1e3 / (len(ms) * hop_s)),
        "deadline_misses": int(np.sum(ms > 1e3 * hop_s)),
    }


def _time_group(streams: list, wav: np.ndarray, repeats: int, rate: int, macs: int) -> list[dict]:
    """The rows of one hop size and thread count: each plan's medians over ``repeats`` passes."""
    hop = streams[0].executor.hop
    for stream in streams:  # warm-up, untimed: the stream goes on from here
        for first in range(0, WARM_UP_HOPS * hop, hop):
            stream.executor.push(wav[first : first + hop])
    calls_before = {s.plan: s.calls for s in streams}
    passes = [_pass(streams, wav) for _ in range(repeats)]
    hops = sum(len(p[streams[0].plan]) for p in passes)
    rows = []
    for stream in streams:
        per_pass = [_statistics(p[stream.plan], hop / rate) for p in passes]
        keys = ("p50_ms", "p95_ms", "max_ms", "rtf", "cpu_p50_ms")
        row = {key: statistics.median(s[key] for s in per_pass) for key in keys}
        row.update(
            plan=stream.plan,
            hop_samples=hop,
            hop_ms=1e3 * hop / rate,
            threads=stream.threads,
            hops_timed=hops,
            deadline_misses=sum(s["deadline_misses"] for s in per_pass),
            calls_per_hop=(stream.calls - calls_before[stream.plan]) / hops,
            macs_per_hop=macs,
            gmac_per_s_at_p50=macs / row["p50_ms"] / 1e6,
            gmac_per_cpu_s_at_p50=macs / row["cpu_p50_ms"] / 1e6,
            passes=per_pass,
        )
        rows.append(row)
    return rows


def _limit(rates: list[dict]) -> dict:
    numpy_rate = max(r["numpy"] for r in rates)
    ort_rate = max(r["onnxruntime"] for r in rates)
    return {
        "size": MATMUL_SIZE,
        "numpy_gmac_per_s": numpy_rate / 1e9,
        "onnxruntime_gmac_per_s": ort_rate / 1e9,
        "limit_gmac_per_s": max(numpy_rate, ort_rate) / 1e9,
        "measurements": [{k: v / 1e9 for k, v in r.items()} for r in rates],
    }


def _plans(spec: StreamBenchSpec) -> tuple[str, ...]:
    from ..export.stateful import check_stateful
    from ..plan.passes.rf_windows import check_rf_windows
    from ..runtime.stream_plans import STREAM_PLANS, applicable_plans

    config = spec.source.config
    check_stateful(config, config.stride)  # a model that cannot stream is refused here, in one line
    if spec.plans is None:
        return applicable_plans(config)
    unknown = sorted(set(spec.plans) - set(STREAM_PLANS))
    if unknown:
        raise UserError(f"--plans {' '.join(unknown)}: choose from {', '.join(STREAM_PLANS)}")
    if "rf-windows" in spec.plans:
        check_rf_windows(config)
    return tuple(p for p in STREAM_PLANS if p in spec.plans)


def measure_stream_bench(spec: StreamBenchSpec) -> dict:
    """The record: a row per hop, thread count and plan, the arithmetic limit, the load."""
    import datetime
    import platform

    from ..export.stateful import macs_per_hop
    from ..plan.passes.rf_windows import hop_samples
    from ..runtime.stream_plans import plan_stream
    from .measure import speech_like_signal

    plans, config = _plans(spec), spec.source.config
    hops = [hop_samples(ms, config.sample_rate, config.stride) for ms in spec.hops_ms]
    wav = speech_like_signal(spec.seconds, config.sample_rate)
    load_before, rows, rates = os.getloadavg(), [], []
    with tempfile.TemporaryDirectory(prefix="convtasnet-bench-stream-") as scratch:
        for hop in hops:
            for threads in spec.threads:
                streams = []
                try:
                    for plan in plans:
                        streams.append(plan_stream(spec.source.model, plan, hop, threads, Path(scratch)))
                    rows += _time_group(streams, wav, spec.repeats, config.sample_rate, macs_per_hop(config, hop))
                finally:
                    for stream in streams:
                        stream.close()
                rates.append({"numpy": numpy_matmul_rate(), "onnxruntime": onnxruntime_matmul_rate()})
                log.info(f"bench --stream: hop {hop} samples, {threads} thread(s) done")
    limit = _limit(rates)
    for row in rows:
        row["share_of_limit"] = row["gmac_per_s_at_p50"] / limit["limit_gmac_per_s"]
        row["cpu_share_of_limit"] = row["gmac_per_cpu_s_at_p50"] / limit["limit_gmac_per_s"]
    return {
        **spec.source.to_json(),
        "kind": "stream",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds_of_audio": spec.seconds,
        "repeats": spec.repeats,
        "plans": list(plans),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "matmul": limit,
        "rows": rows,
    }


def stream_lines(record: dict) -> list[str]:
    """The table `bench --stream` prints."""
    limit = record["matmul"]
    before, after = (" ".join(f"{x:.1f}" for x in record[k]) for k in ("load_average_before", "load_average_after"))
    lines = [
        f"{record['model_source']}: {record['seconds_of_audio']:g} s of speech-like audio per pass, medians of "
        f"{record['repeats']} pass(es); load average (1/5/15 min) {before} before, {after} after",
        f"single-thread float32 {limit['size']}x{limit['size']} matmul: numpy {limit['numpy_gmac_per_s']:.1f} "
        f"GMAC/s, onnxruntime {limit['onnxruntime_gmac_per_s']:.1f} GMAC/s; the limit: "
        f"{limit['limit_gmac_per_s']:.1f} GMAC/s",
        "plan        hop ms  threads  calls/hop    p50 ms    p95 ms    max ms     RTF  misses    MACs/hop  "
        "GMAC/s@p50  of limit  CPU p50 ms  of limit (CPU)",
    ]
    for r in record["rows"]:
        lines.append(
            f"{r['plan']:10s}  {r['hop_ms']:6g}  {r['threads']:7d}  {r['calls_per_hop']:9.1f}  {r['p50_ms']:8.3f}  "
            f"{r['p95_ms']:8.3f}  {r['max_ms']:8.3f}  {r['rtf']:6.3f}  {r['deadline_misses']:6d}  "
            f"{r['macs_per_hop']:10,d}  {r['gmac_per_s_at_p50']:10.2f}  {r['share_of_limit']:8.3f}  "
            f"{r['cpu_p50_ms']:10.3f}  {r['cpu_share_of_limit']:14.3f}"
        )
    lines.append(
        "p50/p95/max ms: wall time per hop; CPU p50 ms: the process's CPU time per hop (all its threads), "
        "its compute without the waits a shared machine adds; of limit: GMAC/s at the p50 hop / the limit"
    )
    return lines
