"""`bench`: speed and memory of every host path, measured side by side in one process.

Paths: the torch reference model; the monolithic ONNX (exported at the input length) in
onnxruntime; the stitched path on torch_proxy and on onnxruntime, per tile width. Per path: the
median and spread of wall time over ``repeats`` timed runs (after one untimed warm-up), the
real-time factor, the time spent outside stages (host steps, tile gather/scatter) and its
share, the peak resident memory while it ran (the kernel's high-water mark, ``PeakMemory``), and
for stitched paths the stage invocations and the values and bytes crossing the host/device
boundary (from the plan report). The float plan (``PlanOptions.float_backends``: gLN, halo
edges and skip sums inside the stages; not for the device) is timed on both float backends too
(``..._float_plan_tile<W>``). With ``block_chan`` the channel-blocked plan's stitched paths
join them (named ``..._block<C>_tile<W>``); with ``long_seconds`` the `separate` path (its default
segmenting) runs once over an input that long, for its peak memory. Writes a JSON and a PNG.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends import load_backend
from ..backends.base import Backend
from ..backends.setup import QUANTIZED_BACKENDS, BackendOptions, open_backend
from ..errors import UserError
from ..guard import check_run_files
from ..resources import refuse_unless_fits
from ..model.source import ModelSource
from ..plan.builder import PlanOptions, PlanPath, float_only_options_of
from ..plan.packing import pack_stages
from ..plan.report import plan_summary
from ..plan.stages import Stage
from ..runs.run_folder import write_json
from .cost_model import DeviceModel, device_predictions, predict
from ..tiling.executor import HostClock, StitchedExecutor, check_tile_width

Report = Callable[[str], None]


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes; 0 where there is none."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Resets the kernel's peak-RSS counter (``VmHWM``) of this process: writing 5 to
    ``/proc/self/clear_refs`` (Linux >= 4.0). False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """The peak resident set size while active: the kernel's own high-water mark, reset on entry
    (exact, and no sampling thread taking the GIL from the timed code every few milliseconds,
    which showed as host time). Where the counter cannot be reset, the RSS is sampled every
    ``interval`` seconds instead; ``method`` says which."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        self.peak = _status_bytes("VmRSS")
        self._thread = None
        if _reset_peak():
            self.method = "VmHWM after clear_refs"
        else:
            self.method = f"VmRSS sampled every {self.interval * 1e3:g} ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _status_bytes("VmRSS"))

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            self.peak = max(self.peak, _status_bytes("VmHWM"))
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_bytes("VmRSS"))


class StageTimer(Backend):
    """Wraps a backend; adds up the time its stages take (the rest of a run is host work)."""

    name = "stage_timer"

    def __init__(self, inner: Backend) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.quantized = inner.quantized

    def prepare(self, plan, tile_w: int) -> None:
        self.inner.prepare(plan, tile_w)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        out = self.inner.run_stage(stage, inputs)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return out


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
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "times_s": [round(t, 4) for t in times], "peak_rss_bytes": memory.peak, "peak_rss_method": memory.method}


def _bench_stitched(plan, wav: np.ndarray, seconds: float, tile_w: int, repeats: int, scratch: Path, label: str,
                    source: ModelSource, paths: dict, report: Report) -> None:
    """Both stitched paths of ``plan`` at ``tile_w``, into ``paths`` as ``stitched_<backend><label>_tile<W>``."""
    from ..export.exporter import export_plan

    export_dir = scratch / f"export{label}"
    export_plan(plan, tile_w, export_dir / f"tile{tile_w}", source.to_json(), report=lambda _: None)
    summary = _plan_summary(plan, tile_w)
    for backend_name, options in (("torch_proxy", {}), ("onnxruntime", {"export_dir": export_dir})):
        backend = load_backend(backend_name, **options)
        try:
            record = _time_stitched(plan, summary, backend, wav, seconds, tile_w, repeats)
        finally:
            backend.close()
        key = f"stitched_{backend_name}{label}_tile{tile_w}"
        paths[key] = record
        _report_stitched(key, record, report)


def _plan_summary(plan, tile_w: int) -> dict:
    """The plan report at ``tile_w`` with the default packing (boundary traffic, per-stage costs)."""
    return plan_summary(plan, tile_w, pack_stages([s.name for s in plan.stages]))


def _time_stitched(plan, summary: dict, backend: Backend, wav: np.ndarray, seconds: float, tile_w: int,
                   repeats: int) -> dict:
    """One stitched path timed (``_measure``): wall time, host time and where it goes, the plan's
    boundary traffic (``summary``: ``_plan_summary`` at ``tile_w``), and what the backend counted
    itself (``stats()``) per timed run."""
    timer, clock = StageTimer(backend), HostClock()
    executor = StitchedExecutor(plan, timer, tile_w, clock)
    stats_after_warm_up: dict = {}

    def reset() -> None:
        timer.seconds, clock.seconds = 0.0, {}
        stats_after_warm_up.update(backend.stats())

    record = _measure(lambda: executor.run({"wav": wav[None, None]}), repeats, after_warm_up=reset)
    mean = statistics.fmean(record["times_s"])
    host = max(mean - timer.seconds / repeats, 0.0)  # means: the stage time is a sum over runs
    by_kind = {kind: seconds / repeats for kind, seconds in sorted(clock.seconds.items(), key=lambda kv: -kv[1])}
    record.update({
        "tile_w": tile_w, "block_chan": plan.block_chan, "host_seconds": host, "host_share": host / mean,
        "host_seconds_by_kind": by_kind, "host_seconds_unaccounted": host - sum(by_kind.values()),
        "stage_invocations": len(plan.stages),
        "boundary_values": round(summary["boundary_values_per_audio_second"] * seconds),
        "boundary_bytes_8bit": round(summary["boundary_bytes_per_audio_second_8bit"] * seconds),
        "boundary_bytes_16bit": round(summary["boundary_bytes_per_audio_second_16bit"] * seconds)})
    stats = _per_run(stats_after_warm_up, backend.stats(), repeats)
    if stats:
        record["backend_stats"] = stats
    return record


def _per_run(before: dict, after: dict, repeats: int) -> dict:
    """A backend's ``stats()`` for the timed runs: per-stage counters (dicts of numbers) as their
    increase divided by ``repeats``; every other entry as it ended (totals, warm-up included)."""
    return {key: {k: (v - before.get(key, {}).get(k, 0)) / repeats for k, v in value.items()}
            if isinstance(value, dict) else value for key, value in after.items()}


def _report_stitched(key: str, record: dict, report: Report) -> None:
    top = ", ".join(f"{kind} {seconds:.3f}" for kind, seconds in list(record["host_seconds_by_kind"].items())[:4])
    report(f"bench: {key} {record['median_s']:.3f} s (host {record['host_share']:.0%}: {top} s)")


class DeviceBackend:
    """``--backend``'s device backend, opened before any path is timed so that a missing HEF,
    runtime or tile width fails at once (each tile width is prepared once up front)."""

    def __init__(self, options: BackendOptions, plan, source: ModelSource, tile_widths: list[int]) -> None:
        self.options = options
        # the scratch folder is for onnxruntime's own export, which --backend does not take
        self.backend = open_backend(options, plan, source.to_json(), tile_widths, Path("."))
        try:
            for tile_w in tile_widths:
                self.backend.prepare(plan, tile_w)
        except BaseException:
            self.backend.close()
            raise

    def close(self) -> None:
        self.backend.close()


def _bench_device_backend(plan, device_backend: DeviceBackend, wav: np.ndarray, seconds: float, tile_w: int,
                          repeats: int, device: DeviceModel, paths: dict, report: Report) -> None:
    """The stitched path on a device backend (``--backend``), timed as the others, into ``paths`` as
    ``stitched_<backend>_tile<W>``. hailo_runtime also sets its measured device time and calls
    beside the cost model's prediction for the same plan, tile width and batch size, with the
    per-call overhead that would explain the difference (to re-fit ``call_overhead_ms``)."""
    options = device_backend.options
    summary = _plan_summary(plan, tile_w)
    record = _time_stitched(plan, summary, device_backend.backend, wav, seconds, tile_w, repeats)
    if options.name == "hailo_runtime":
        record["measured_vs_predicted"] = _measured_vs_predicted(summary, record["backend_stats"], seconds, device,
                                                                 options.batch_size)
    key = f"stitched_{options.name}_tile{tile_w}"
    paths[key] = record
    _report_stitched(key, record, report)
    if "measured_vs_predicted" in record:
        fit = record["measured_vs_predicted"]
        report(f"bench: {options.name} device time {fit['measured_device_s']:.3f} s in {fit['measured_calls']:.0f} "
               f"calls; the cost model predicted {fit['predicted_device_s']:.3f} s in {fit['predicted_calls']} calls "
               f"(x{fit['measured_over_predicted']:.2f}); implied call overhead "
               f"{fit['implied_call_overhead_ms'] or 0:.3f} ms (--device-param call_overhead_ms=... to re-fit)")


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
    return {"device": model.device, "link": model.link, "batch_size": batch_size,
            "measured_device_s": measured, "measured_calls": calls,
            "predicted_device_s": predicted["device_s"], "predicted_calls": predicted["calls"],
            "predicted": predicted, "measured_over_predicted": measured / predicted["device_s"],
            "implied_call_overhead_ms": rest / calls * 1e3 if calls else None}


def bench_long_separation(source: ModelSource, seconds: float, tile_w: int, report: Report = print) -> dict:
    """`separate`'s path (stitched torch_proxy, default segmenting) once over ``seconds`` of audio,
    in a fresh process (spawned), so its peak RSS is its own and not what earlier paths left:
    wall time, RTF and peak RSS (the memory goal is about this path, not the 10 s ones)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        record = pool.apply(_long_separation, (source.model, seconds, tile_w))
    how = f"segments of {record['segment_seconds']:g} s" if record["segment_seconds"] else "whole"
    report(f"bench: separate, {seconds:g} s of audio ({how}): {record['wall_s']:.1f} s, peak RSS "
           f"{record['peak_rss_bytes'] / 2 ** 30:.2f} GiB (own process)")
    return record


def _long_separation(model, seconds: float, tile_w: int) -> dict:
    from ..separation.segments import SegmentPolicy
    from ..separation.separator import StitchedSeparator, separate_segmented

    rate = model.config.sample_rate
    wav = speech_like_signal(seconds, rate, seed=1)
    policy = SegmentPolicy()
    segment = policy.segment_seconds(seconds)
    separator = StitchedSeparator(model, load_backend("torch_proxy"), tile_w)
    with PeakMemory() as memory:
        started = time.perf_counter()
        if segment is None:
            separator(wav)
        else:
            separate_segmented(separator, wav, int(segment * rate), int(policy.overlap_seconds * rate))
        wall = time.perf_counter() - started
    return {"seconds_of_audio": seconds, "tile_w": tile_w, "segment_seconds": segment,
            "overlap_seconds": policy.overlap_seconds if segment else None, "wall_s": wall, "rtf": wall / seconds,
            "peak_rss_bytes": memory.peak, "peak_rss_method": memory.method, "process": "its own (spawned)"}


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
    kernels = [(e["name"][:-len("_kernel_time")], e["args"]["op_name"], e["dur"] / 1e6) for e in events
               if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last]
    norm_scopes = {name.rsplit("/", 1)[0] for name, op, _ in kernels if op == "ReduceMean"}
    per_op: dict[str, float] = collections.Counter()
    for _, op, seconds in kernels:
        per_op[op] += seconds
    total = sum(per_op.values())
    norms = sum(seconds for name, _, seconds in kernels if name.rsplit("/", 1)[0] in norm_scopes)
    return {"kernel_seconds_by_op": {op: round(t, 4) for op, t in sorted(per_op.items(), key=lambda kv: -kv[1])},
            "kernel_seconds": total, "norm_seconds": norms, "norm_share": norms / total if total else 0.0}


def bench_paths(source: ModelSource, seconds: float, tile_widths: list[int], repeats: int,
                report: Report = print, block_chan: int | None = None, device_backend: DeviceBackend | None = None,
                device: DeviceModel | None = None) -> dict:
    import onnxruntime as ort
    import torch

    from ..export.exporter import export_monolithic

    model = source.model
    rate = model.config.sample_rate
    wav = speech_like_signal(seconds, rate)
    plan = PlanOptions().build(model, PlanPath.FULL_CHAIN)
    float_plan = PlanOptions.float_backends(model.config).build(model, PlanPath.FULL_CHAIN)
    paths: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="convtasnet-bench-") as scratch:
        with torch.no_grad():
            paths["torch_reference"] = _measure(lambda: model(torch.from_numpy(wav[None])), repeats)
        report(f"bench: torch reference {paths['torch_reference']['median_s']:.3f} s")
        mono = export_monolithic(model, len(wav), Path(scratch) / "monolithic", source.to_json())
        mono_file = str(mono.directory / mono.manifest.stages[0].file)
        session = ort.InferenceSession(mono_file, _monolithic_options(), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: wav[None, None]}
        paths["monolithic_onnxruntime"] = _measure(lambda: session.run(None, feed), repeats)
        session = None  # its memory goes before the profiled session's comes
        paths["monolithic_onnxruntime"].update(_monolithic_op_profile(mono_file, feed, Path(scratch)))
        report(f"bench: monolithic onnxruntime {paths['monolithic_onnxruntime']['median_s']:.3f} s (its norms "
               f"{paths['monolithic_onnxruntime']['norm_share']:.0%} of the kernel time)")
        for tile_w in tile_widths:
            _bench_stitched(plan, wav, seconds, tile_w, repeats, Path(scratch), "", source, paths, report)
            _bench_stitched(float_plan, wav, seconds, tile_w, repeats, Path(scratch), FLOAT_PLAN, source, paths,
                            report)
            if device_backend is not None:
                _bench_device_backend(plan, device_backend, wav, seconds, tile_w, repeats, device or DeviceModel(),
                                      paths, report)
            if block_chan:
                blocked = PlanOptions(block_chan=block_chan).build(model, PlanPath.FULL_CHAIN)
                _bench_stitched(blocked, wav, seconds, tile_w, repeats, Path(scratch), f"_block{block_chan}", source,
                                paths, report)
    for record in paths.values():
        record["rtf"] = record["median_s"] / seconds
    return paths


#: The label of the float plan's paths (``stitched_<backend>_float_plan_tile<W>``).
FLOAT_PLAN = "_float_plan"


def device_backend_option(options: BackendOptions | None) -> BackendOptions | None:
    """What ``--backend`` adds to bench: a device backend's stitched path, or nothing for the
    default (torch_proxy and onnxruntime are always timed)."""
    if options is None or (options.name == "torch_proxy" and options == BackendOptions()):
        return None
    if options.name not in QUANTIZED_BACKENDS:
        raise UserError(f"--backend {options.name}: bench always times torch_proxy and onnxruntime; --backend adds "
                        f"a device backend's path: {', '.join(QUANTIZED_BACKENDS)} (with --hef-dir or --noise-dir)")
    return options


def bench_command(source: ModelSource, seconds: float, tile_widths: list[int] | None, repeats: int,
                  json_path: Path | None, device: DeviceModel | None = None, report: Report = print,
                  block_chan: int | None = None, long_seconds: float | None = None,
                  backend: BackendOptions | None = None) -> int:
    import os
    import platform

    if seconds <= 0 or repeats < 1:
        raise UserError("--seconds must be > 0 and --repeats >= 1")
    if block_chan is not None and block_chan < 1:
        raise UserError(f"--block-chan {block_chan}: use a positive channel count")
    config = source.model.config
    refuse_unless_fits(config.forward_bytes(round(seconds * config.sample_rate)), f"bench over {seconds:g} s of audio",
                       "pass a shorter --seconds")
    if long_seconds:
        refuse_unless_fits(4 * (1 + config.n_src) * round(long_seconds * config.sample_rate),
                           f"--long-seconds {long_seconds:g} (the audio and its separated sources)",
                           "pass a shorter --long-seconds")
    tile_widths = sorted(set(tile_widths or [256]))
    for tile_w in tile_widths:
        check_tile_width(tile_w)
    check_run_files(source.given() + (backend.given() if backend else []),
                    [json_path, json_path.with_suffix(".png") if json_path else None])
    device = device or DeviceModel()
    plan = PlanOptions().build(source.model, PlanPath.FULL_CHAIN)
    predictions = device_predictions(plan, seconds, device, tile_widths)
    options = device_backend_option(backend)
    device_backend = DeviceBackend(options, plan, source, tile_widths) if options is not None else None
    try:
        paths = bench_paths(source, seconds, tile_widths, repeats, report, block_chan, device_backend, device)
    finally:
        if device_backend is not None:
            device_backend.close()
    first = tile_widths[0]
    record = {
        **source.to_json(), "seconds_of_audio": seconds, "repeats": repeats, "tile_widths": tile_widths,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "paths": paths, "device_prediction": predictions,
        "ratio_stitched_onnxruntime_vs_monolithic_onnxruntime":
            paths[f"stitched_onnxruntime_tile{first}"]["median_s"] / paths["monolithic_onnxruntime"]["median_s"],
        "ratio_stitched_torch_proxy_vs_torch_reference":
            paths[f"stitched_torch_proxy_tile{first}"]["median_s"] / paths["torch_reference"]["median_s"],
        "float_plan_options": list(float_only_options_of(PlanOptions.float_backends(source.model.config).to_json())),
        "ratio_stitched_onnxruntime_float_plan_vs_monolithic_onnxruntime":
            paths[f"stitched_onnxruntime{FLOAT_PLAN}_tile{first}"]["median_s"] /
            paths["monolithic_onnxruntime"]["median_s"],
        "host_share_stitched_onnxruntime_float_plan": paths[f"stitched_onnxruntime{FLOAT_PLAN}_tile{first}"]["host_share"],
    }
    if block_chan:
        record["ratio_stitched_onnxruntime_block_vs_unblocked"] = \
            paths[f"stitched_onnxruntime_block{block_chan}_tile{first}"]["median_s"] / \
            paths[f"stitched_onnxruntime_tile{first}"]["median_s"]
    if long_seconds:
        record["separate_long_input"] = bench_long_separation(source, long_seconds, first, report)
    report("path                                  median s   spread s   RTF     host share  peak RSS")
    for name, r in paths.items():
        share = f"{r['host_share']:.0%}" if "host_share" in r else "-"
        report(f"{name:36s}  {r['median_s']:8.3f}  {r['max_s'] - r['min_s']:8.3f}  {r['rtf']:6.3f}  {share:>10s}  "
               f"{r['peak_rss_bytes'] / 2 ** 30:.2f} GiB")
    mono = paths["monolithic_onnxruntime"]
    report(f"monolithic onnxruntime: its norms take {mono['norm_share']:.0%} of its kernel time "
           f"({mono['norm_seconds']:.3f} s, ONNX Runtime's profiler); the stitched paths do that work as host steps")
    execution = predictions["execution"]
    report(f"on the device (tile_w {predictions['recommended_tile_w']}): execution mode {execution['mode']}, "
           f"{execution['network_groups']} network group(s) in {execution['configure_windows']} configure window(s), "
           f"per utterance {execution['switches']} scheduler switches, {execution['activations']} activations, "
           f"{execution['network_groups_configured']} network groups reconfigured")
    report(f"stitched onnxruntime / monolithic onnxruntime: "
           f"{record['ratio_stitched_onnxruntime_vs_monolithic_onnxruntime']:.2f}x; stitched torch_proxy / torch "
           f"reference: {record['ratio_stitched_torch_proxy_vs_torch_reference']:.2f}x (tile_w {first})")
    report(f"float plan ({' '.join(record['float_plan_options'])}; not for the device): stitched onnxruntime / "
           f"monolithic onnxruntime {record['ratio_stitched_onnxruntime_float_plan_vs_monolithic_onnxruntime']:.2f}x, "
           f"host share {record['host_share_stitched_onnxruntime_float_plan']:.0%}")
    if block_chan:
        report(f"stitched onnxruntime with --block-chan {block_chan} / without: "
               f"{record['ratio_stitched_onnxruntime_block_vs_unblocked']:.2f}x")
    report(f"predicted {device.device} behind a Pi 5 PCIe {device.link} x1 (parameters and sources in the JSON; "
           "assumptions marked):")
    report("tile_w   compute s  transfer s  overhead s  calls  device RTF  latency to first output")
    for row in predictions["per_tile_width"]:
        report(f"{row['tile_w']:6d}  {row['compute_s']:9.3f}  {row['transfer_s']:10.3f}  {row['overhead_s']:10.3f}  "
               f"{row['calls']:5d}  {row['rtf']:10.3f}  {row['latency_to_first_output_s']:.2f} s")
    every = ", ".join(f"{k} {v:.3f}" for k, v in predictions["rtf_at_recommended"].items())
    report(f"recommended tile_w {predictions['recommended_tile_w']} (lowest predicted device time); RTF there: {every}")
    if json_path is not None:
        write_json(json_path, record)
        plot_bench(json_path.with_suffix(".png"), record)
        report(f"wrote {json_path} and {json_path.with_suffix('.png')}")
    return 0


def plot_bench(path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    names = list(record["paths"])
    medians = [record["paths"][n]["median_s"] for n in names]
    spreads = [[m - record["paths"][n]["min_s"] for n, m in zip(names, medians)],
               [record["paths"][n]["max_s"] - m for n, m in zip(names, medians)]]
    host = [record["paths"][n].get("host_seconds", 0.0) for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.9))
    ax.barh(names, medians, xerr=spreads, color="C0", label="stages / whole model")
    ax.barh(names, host, color="C1", label="host work (steps, gather/scatter)")
    norms = [record["paths"][n].get("norm_share", 0.0) * m for n, m in zip(names, medians)]
    ax.barh(names, norms, color="C2", label="norms inside the monolithic model (profiled share)")
    ax.set_xlabel(f"seconds for {record['seconds_of_audio']:g} s of audio (median of {record['repeats']})")
    ax.invert_yaxis()
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=3)  # below: bars stay visible
    ax.set_title(record["model_source"], fontsize=9)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
