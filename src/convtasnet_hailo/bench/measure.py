"""`bench`: speed and memory of every host path, measured side by side in one process.

Paths: the torch reference model; the monolithic ONNX (exported at the input length) in
onnxruntime; the stitched path on torch_proxy and on onnxruntime, per tile width. Per path: the
median and spread of wall time over ``repeats`` timed runs (after one untimed warm-up), the
real-time factor, the time spent outside stages (host steps, tile gather/scatter) and its
share, the peak resident memory while it ran (the kernel's high-water mark, ``PeakMemory``), and
for stitched paths the stage invocations and the values and bytes crossing the host/device
boundary (from the plan report). The float plan (``builder.float_backend_options``: gLN, halo
edges and skip sums inside the stages; not for the device) is timed on both float backends too
(``..._float_plan_tile<W>``). With ``block_chan`` the channel-blocked plan's stitched paths
join them (named ``..._block<C>_tile<W>``); with ``long_seconds`` the `separate` path (its default
segmenting) runs once over an input that long, for its peak memory. The `bench` command
(``commands/bench.py``) writes the record and its PNG.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..backends.base import Backend
from ..backends.timing import StageTimer
from ..errors import UserError
from ..model.source import ModelSource
from ..plan import PlanOptions, PlanPath, build_plan, float_backend_options
from ..plan.cost_model import DeviceModel, device_predictions, predict
from ..plan.packing import pack_stages
from ..plan.report import plan_summary
from ..runtime import RunSpec, open_run
from ..runtime.backend_setup import QUANTIZED_BACKENDS, BackendOptions
from ..runtime.engine import host_clock, open_backend_named, stitched_executor
from ..runtime.tensors import check_tile_width
from .memory import PeakMemory

log = logging.getLogger(__name__)


def speech_like_signal(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Pink-ish noise under a syllable envelope: the speed of the paths does not depend on the
    content, but norms and masks see speech-like levels."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    t = np.arange(n) / rate
    wav = np.fft.irfft(spectrum, n) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def _measure(run: Callable[[], object], repeats: int, after_warm_up: Callable[[], None] = lambda: None) -> dict:
    run()  # warm-up: sessions, caches, allocator
    after_warm_up()
    times = []
    with PeakMemory() as memory:
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": [round(t, 4) for t in times],
        "peak_rss_bytes": memory.peak,
        "peak_rss_method": memory.method,
    }


@dataclasses.dataclass(frozen=True)
class _BenchRun:
    """What every timed path of one bench shares: the model, the input (``seconds`` long), the
    timed runs per path, a scratch folder, and the records (``paths``, by name) the paths add."""

    source: ModelSource
    wav: np.ndarray
    seconds: float
    repeats: int
    scratch: Path
    paths: dict


def _bench_stitched(run: _BenchRun, plan, tile_w: int, label: str) -> None:
    """Both stitched paths of ``plan`` at ``tile_w``, into ``run.paths`` as ``stitched_<backend><label>_tile<W>``."""
    from ..export.exporter import export_plan

    export_dir = run.scratch / f"export{label}"
    export_plan(plan, tile_w, export_dir / f"tile{tile_w}", run.source.to_json())
    summary = _plan_summary(plan, tile_w)
    for backend_name, options in (("torch_proxy", {}), ("onnxruntime", {"export_dir": export_dir})):
        backend = open_backend_named(backend_name, **options)
        try:
            record = _time_stitched(run, plan, summary, backend, tile_w)
        finally:
            backend.close()
        key = f"stitched_{backend_name}{label}_tile{tile_w}"
        run.paths[key] = record
        _log_stitched(key, record)


def _plan_summary(plan, tile_w: int) -> dict:
    """The plan report at ``tile_w`` with the default packing (boundary traffic, per-stage costs)."""
    return plan_summary(plan, tile_w, pack_stages([s.name for s in plan.stages]))


def _time_stitched(run: _BenchRun, plan, summary: dict, backend: Backend, tile_w: int) -> dict:
    """One stitched path timed (``_measure``): wall time, host time and where it goes, the plan's
    boundary traffic (``summary``: ``_plan_summary`` at ``tile_w``), and what the backend counted
    itself (``stats()``) per timed run."""
    timer, clock = StageTimer(backend), host_clock()
    executor = stitched_executor(plan, timer, tile_w, clock)
    stats_after_warm_up: dict = {}
    wav, seconds, repeats = run.wav, run.seconds, run.repeats

    def reset() -> None:
        timer.seconds, clock.seconds = 0.0, {}
        stats_after_warm_up.update(backend.stats())

    record = _measure(lambda: executor.run({"wav": wav[None, None]}), repeats, after_warm_up=reset)
    mean = statistics.fmean(record["times_s"])
    host = max(mean - timer.seconds / repeats, 0.0)  # means: the stage time is a sum over runs
    by_kind = {kind: seconds / repeats for kind, seconds in sorted(clock.seconds.items(), key=lambda kv: -kv[1])}
    record.update(
        {
            "tile_w": tile_w,
            "block_chan": plan.options.block_chan,
            "host_seconds": host,
            "host_share": host / mean,
            "host_seconds_by_kind": by_kind,
            "host_seconds_unaccounted": host - sum(by_kind.values()),
            "stage_invocations": len(plan.stages),
            "boundary_values": round(summary["boundary_values_per_audio_second"] * seconds),
            "boundary_bytes_8bit": round(summary["boundary_bytes_per_audio_second_8bit"] * seconds),
            "boundary_bytes_16bit": round(summary["boundary_bytes_per_audio_second_16bit"] * seconds),
        }
    )
    stats = _per_run(stats_after_warm_up, backend.stats(), repeats)
    if stats:
        record["backend_stats"] = stats
    return record


def _per_run(before: dict, after: dict, repeats: int) -> dict:
    """A backend's ``stats()`` for the timed runs: per-stage counters (dicts of numbers) as their
    increase divided by ``repeats``; every other entry as it ended (totals, warm-up included)."""
    return {
        key: {k: (v - before.get(key, {}).get(k, 0)) / repeats for k, v in value.items()}
        if isinstance(value, dict)
        else value
        for key, value in after.items()
    }


def _log_stitched(key: str, record: dict) -> None:
    top = ", ".join(f"{kind} {seconds:.3f}" for kind, seconds in list(record["host_seconds_by_kind"].items())[:4])
    log.info(f"bench: {key} {record['median_s']:.3f} s (host {record['host_share']:.0%}: {top} s)")


class DeviceBackend:
    """``--backend``'s device backend, opened before any path is timed so that a missing HEF,
    runtime or tile width fails at once (each tile width is prepared once up front)."""

    def __init__(self, options: BackendOptions, plan, source: ModelSource, tile_widths: list[int]) -> None:
        self.options = options
        self.run = open_run(RunSpec(source=source, backend=options, tile_w=tile_widths[0]), plan=plan)
        self.backend = self.run.backend
        try:
            for tile_w in tile_widths:
                self.backend.prepare(plan, tile_w)
        except BaseException:
            self.backend.close()
            raise

    def close(self) -> None:
        self.run.close()


def _bench_device_backend(
    run: _BenchRun, plan, device_backend: DeviceBackend, tile_w: int, device: DeviceModel
) -> None:
    """The stitched path on a device backend (``--backend``), timed as the others, into ``run.paths``
    as ``stitched_<backend>_tile<W>``. hailo_runtime also sets its measured device time and calls
    beside the cost model's prediction for the same plan, tile width and batch size, with the
    per-call overhead that would explain the difference (to re-fit ``call_overhead_ms``)."""
    options = device_backend.options
    summary = _plan_summary(plan, tile_w)
    record = _time_stitched(run, plan, summary, device_backend.backend, tile_w)
    if options.name == "hailo_runtime":
        record["measured_vs_predicted"] = _measured_vs_predicted(
            summary, record["backend_stats"], run.seconds, device, options.batch_size
        )
    key = f"stitched_{options.name}_tile{tile_w}"
    run.paths[key] = record
    _log_stitched(key, record)
    if "measured_vs_predicted" in record:
        fit = record["measured_vs_predicted"]
        log.info(
            f"bench: {options.name} device time {fit['measured_device_s']:.3f} s in "
            f"{fit['measured_calls']:.0f} calls; the cost model predicted {fit['predicted_device_s']:.3f} s in "
            f"{fit['predicted_calls']} calls (x{fit['measured_over_predicted']:.2f}); implied call overhead "
            f"{fit['implied_call_overhead_ms'] or 0:.3f} ms (--device-param call_overhead_ms=... to re-fit)"
        )


def _measured_vs_predicted(summary: dict, stats: dict, seconds: float, device: DeviceModel, batch_size: int) -> dict:
    """hailo_runtime's device seconds and calls per utterance against ``predict`` for the same
    plan and tile width (``summary``) and batch size. ``implied_call_overhead_ms``: the per-call overhead that makes
    the prediction equal the measurement, compute, transfer and switches kept as modelled."""
    values = dict(device.values)
    values["batch_size"] = float(batch_size)
    model = DeviceModel(device.device, device.link, tuple(values.items()))
    mode = stats.get("execution_mode")  # the mode the backend read off the HEFs, priced as such
    if mode in summary.get("execution_modes", {}):
        summary = {**summary, "execution": summary["execution_modes"][mode]}
    predicted = predict(summary, seconds, model)
    measured = sum(stats.get("device_seconds", {}).values())
    calls = sum(stats.get("device_calls", {}).values())
    # everything but the calls' own overhead, as modelled: compute, transfer, switches, activations
    modelled = predicted["device_s"] - predicted["calls"] * model.get("call_overhead_ms") / 1e3
    rest = measured - modelled
    return {
        "device": model.device,
        "link": model.link,
        "batch_size": batch_size,
        "measured_device_s": measured,
        "measured_calls": calls,
        "predicted_device_s": predicted["device_s"],
        "predicted_calls": predicted["calls"],
        "predicted": predicted,
        "measured_over_predicted": measured / predicted["device_s"],
        "implied_call_overhead_ms": rest / calls * 1e3 if calls else None,
    }


def bench_long_separation(source: ModelSource, seconds: float, tile_w: int) -> dict:
    """`separate`'s path (stitched torch_proxy, default segmenting) once over ``seconds`` of audio,
    in a fresh process (spawned), so its peak RSS is its own and not what earlier paths left:
    wall time, RTF and peak RSS (the memory goal is about this path, not the 10 s ones)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        record = pool.apply(_long_separation, (source, seconds, tile_w))
    how = f"segments of {record['segment_seconds']:g} s" if record["segment_seconds"] else "whole"
    log.info(
        f"bench: separate, {seconds:g} s of audio ({how}): {record['wall_s']:.1f} s, peak RSS "
        f"{record['peak_rss_bytes'] / 2**30:.2f} GiB (own process)"
    )
    return record


def _long_separation(source: ModelSource, seconds: float, tile_w: int) -> dict:
    from ..runtime.separator import separate_segmented
    from ..separation.segments import SegmentPolicy

    rate = source.model.config.sample_rate
    wav = speech_like_signal(seconds, rate, seed=1)
    policy = SegmentPolicy()
    segment = policy.segment_seconds(seconds)
    with open_run(RunSpec(source=source, tile_w=tile_w)) as run:
        separator = run.separator()
        with PeakMemory() as memory:
            started = time.perf_counter()
            if segment is None:
                separator(wav)
            else:
                separate_segmented(separator, wav, int(segment * rate), int(policy.overlap_seconds * rate))
            wall = time.perf_counter() - started
    return {
        "seconds_of_audio": seconds,
        "tile_w": tile_w,
        "segment_seconds": segment,
        "overlap_seconds": policy.overlap_seconds if segment else None,
        "wall_s": wall,
        "rtf": wall / seconds,
        "peak_rss_bytes": memory.peak,
        "peak_rss_method": memory.method,
        "process": "its own (spawned)",
    }


def _monolithic_options():
    """The monolithic model as a user would run it: one session with ONNX Runtime's defaults (its
    own arena), on the same number of threads as the stages."""
    import onnxruntime as ort

    from ..backends.onnxruntime_backend import default_threads

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if default_threads():
        options.intra_op_num_threads = default_threads()
    return options


def _monolithic_op_profile(model_file: str, feed: dict, scratch: Path) -> dict:
    """One more run of the monolithic model, profiled by ONNX Runtime (after a warm-up): kernel
    seconds per op type, and those of its norms: every node in a scope that holds a ReduceMean
    (the gLN / cLN modules as torch exports them: means, centring, variance, scale, shift).
    Set beside the stitched paths' host share: their host steps are mostly these same norms."""
    import collections
    import json

    import onnxruntime as ort

    options = _monolithic_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch / "monolithic_profile")
    session = ort.InferenceSession(model_file, options, providers=["CPUExecutionProvider"])
    session.run(None, feed)  # warm-up; only the last run's events count
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    del session
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    last = runs[-1]["ts"]
    kernels = [
        (e["name"][: -len("_kernel_time")], e["args"]["op_name"], e["dur"] / 1e6)
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last
    ]
    norm_scopes = {name.rsplit("/", 1)[0] for name, op, _ in kernels if op == "ReduceMean"}
    per_op: dict[str, float] = collections.Counter()
    for _, op, seconds in kernels:
        per_op[op] += seconds
    total = sum(per_op.values())
    norms = sum(seconds for name, _, seconds in kernels if name.rsplit("/", 1)[0] in norm_scopes)
    return {
        "kernel_seconds_by_op": {op: round(t, 4) for op, t in sorted(per_op.items(), key=lambda kv: -kv[1])},
        "kernel_seconds": total,
        "norm_seconds": norms,
        "norm_share": norms / total if total else 0.0,
    }


def bench_paths(request: BenchSpec, tile_widths: list[int], device_backend: DeviceBackend | None = None) -> dict:
    """Every path's timing record, by name: the whole-model references, then per tile width the
    stitched paths of the plan, the float plan, the device backend and the blocked plan."""
    model = request.source.model
    wav = speech_like_signal(request.seconds, model.config.sample_rate)
    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    float_plan = build_plan(model, float_backend_options(model.config), PlanPath.FULL_CHAIN)
    with tempfile.TemporaryDirectory(prefix="convtasnet-bench-") as scratch:
        run = _BenchRun(request.source, wav, request.seconds, request.repeats, Path(scratch), {})
        _bench_torch_reference(run)
        _bench_monolithic(run)
        for tile_w in tile_widths:
            _bench_stitched(run, plan, tile_w, "")
            _bench_stitched(run, float_plan, tile_w, FLOAT_PLAN)
            if device_backend is not None:
                _bench_device_backend(run, plan, device_backend, tile_w, request.device)
            if request.block_chan:
                blocked = build_plan(model, PlanOptions(block_chan=request.block_chan), PlanPath.FULL_CHAIN)
                _bench_stitched(run, blocked, tile_w, f"_block{request.block_chan}")
    for record in run.paths.values():
        record["rtf"] = record["median_s"] / request.seconds
    return run.paths


def _bench_torch_reference(run: _BenchRun) -> None:
    import torch

    model, wav = run.source.model, run.wav
    with torch.no_grad():
        run.paths["torch_reference"] = _measure(lambda: model(torch.from_numpy(wav[None])), run.repeats)
    log.info(f"bench: torch reference {run.paths['torch_reference']['median_s']:.3f} s")


def _bench_monolithic(run: _BenchRun) -> None:
    """The monolithic ONNX (exported at the input's length) in onnxruntime, timed, then profiled."""
    import onnxruntime as ort

    from ..export.exporter import export_monolithic

    mono = export_monolithic(run.source.model, len(run.wav), run.scratch / "monolithic", run.source.to_json())
    mono_file = str(mono.directory / mono.manifest.stages[0].file)
    session = ort.InferenceSession(mono_file, _monolithic_options(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: run.wav[None, None]}
    record = run.paths["monolithic_onnxruntime"] = _measure(lambda: session.run(None, feed), run.repeats)
    session = None  # its memory goes before the profiled session's comes
    record.update(_monolithic_op_profile(mono_file, feed, run.scratch))
    log.info(
        f"bench: monolithic onnxruntime {record['median_s']:.3f} s (its norms "
        f"{record['norm_share']:.0%} of the kernel time)"
    )


#: The label of the float plan's paths (``stitched_<backend>_float_plan_tile<W>``).
FLOAT_PLAN = "_float_plan"


def device_backend_option(options: BackendOptions | None) -> BackendOptions | None:
    """What ``--backend`` adds to bench: a device backend's stitched path, or nothing for the
    default (torch_proxy and onnxruntime are always timed)."""
    if options is None or (options.name == "torch_proxy" and options == BackendOptions()):
        return None
    if options.name not in QUANTIZED_BACKENDS:
        raise UserError(
            f"--backend {options.name}: bench always times torch_proxy and onnxruntime; --backend adds "
            f"a device backend's path: {', '.join(QUANTIZED_BACKENDS)} (with --hef-dir or --noise-dir)"
        )
    return options


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """``bench``: every path timed over ``seconds`` of speech-like audio at each tile width,
    ``repeats`` times; with ``block_chan`` also the blocked plan, with ``long_seconds`` also
    `separate`'s path once, with a device ``backend`` also the device's path."""

    source: ModelSource
    seconds: float = 10.0
    tile_widths: tuple[int, ...] = (256,)
    repeats: int = 3
    device: DeviceModel = DeviceModel()
    block_chan: int | None = None
    long_seconds: float | None = None
    backend: BackendOptions | None = None

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.repeats < 1:
            raise UserError("--seconds must be > 0 and --repeats >= 1")
        if self.block_chan is not None and self.block_chan < 1:
            raise UserError(f"--block-chan {self.block_chan}: use a positive channel count")
        for tile_w in self.tile_widths:
            check_tile_width(tile_w)


def _ratios(paths: dict, first: int, block_chan: int | None) -> dict:
    """The record's headline ratios at the first tile width (keys as the JSON names them)."""
    float_plan = paths[f"stitched_onnxruntime{FLOAT_PLAN}_tile{first}"]
    ratios = {
        "ratio_stitched_onnxruntime_vs_monolithic_onnxruntime": paths[f"stitched_onnxruntime_tile{first}"]["median_s"]
        / paths["monolithic_onnxruntime"]["median_s"],
        "ratio_stitched_torch_proxy_vs_torch_reference": paths[f"stitched_torch_proxy_tile{first}"]["median_s"]
        / paths["torch_reference"]["median_s"],
        "ratio_stitched_onnxruntime_float_plan_vs_monolithic_onnxruntime": float_plan["median_s"]
        / paths["monolithic_onnxruntime"]["median_s"],
        "host_share_stitched_onnxruntime_float_plan": float_plan["host_share"],
    }
    if block_chan:
        ratios["ratio_stitched_onnxruntime_block_vs_unblocked"] = (
            paths[f"stitched_onnxruntime_block{block_chan}_tile{first}"]["median_s"]
            / paths[f"stitched_onnxruntime_tile{first}"]["median_s"]
        )
    return ratios


def measure_bench(request: BenchSpec) -> dict:
    """The bench record: every path's timings, the ratios, and the device prediction."""
    import os
    import platform

    source, tile_widths = request.source, sorted(set(request.tile_widths))
    plan = build_plan(source.model, PlanOptions(), PlanPath.FULL_CHAIN)
    predictions = device_predictions(plan, request.seconds, request.device, tile_widths)
    options = device_backend_option(request.backend)
    device_backend = DeviceBackend(options, plan, source, tile_widths) if options is not None else None
    try:
        paths = bench_paths(request, tile_widths, device_backend)
    finally:
        if device_backend is not None:
            device_backend.close()
    record = {
        **source.to_json(),
        "seconds_of_audio": request.seconds,
        "repeats": request.repeats,
        "tile_widths": tile_widths,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "paths": paths,
        "device_prediction": predictions,
        "block_chan": request.block_chan,
        "float_plan_options": list(float_backend_options(source.model.config).float_only),
        **_ratios(paths, tile_widths[0], request.block_chan),
    }
    if request.long_seconds:
        record["separate_long_input"] = bench_long_separation(source, request.long_seconds, tile_widths[0])
    return record
