"""`stream`: real-time separation of a causal model, simulated from a file or live from a sound card.

Simulated real time: the file is cut into hops; each hop is pushed to the streaming executor as
if it had just arrived, and the compute it takes is timed. A hop whose compute takes longer than
the hop lasts misses its deadline. Reported: the algorithmic latency (a sample waits up to one
hop to be pushed, then the encoder window's overlap for the last frame it belongs to), per-hop
compute p50 / p95 / max, the RTF, deadline misses, the streamed output's distance from the
offline model on the same file, and the cost model's per-hop device time on a Hailo-8L / Pi 5.
Writes ``<stem>_s<i>.wav``, ``stream_run.json`` and ``stream_latency.png``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..runtime.backend_setup import BackendOptions
from ..errors import UserError
from ..guard import check_run_files
from ..model.source import ModelSource
from ..runtime import Run
from ..runtime.separator import reference_separation
from ..runtime.stream_choice import StreamChoice
from ..runtime.streaming import StreamSpec, open_stream
from ..plan.cost_model import DeviceModel
from ..plan.options import DEFAULT_MAX_WIDTH, PlanOptions
from ..resources import refuse_unless_fits
from ..runs.run_folder import write_json
from ..runtime.stream_executor import StreamingExecutor
from .live import sounddevice_module, stream_live

Report = Callable[[str], None]


def timed_push(executor, block: np.ndarray, per_hop: list[float], host: list[float]) -> np.ndarray:
    """One hop pushed; its compute time appended to ``per_hop``, the part outside the device
    calls (what a Pi 5's CPU must keep up with) to ``host``."""
    device_before, started = executor.backend.seconds, time.perf_counter()
    samples = executor.push(block)
    total = time.perf_counter() - started
    per_hop.append(total)
    host.append(total - (executor.backend.seconds - device_before))
    return samples


def simulate(executor, wav: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Pushes ``wav`` hop by hop, timing each push, then gives the last partial hop to ``finish``.
    Returns the output, shape (n_src, len(wav)), equal to the offline model's on every sample,
    and the per-hop compute in seconds."""
    pieces, seconds = [], []
    whole = len(wav) // executor.hop * executor.hop
    for first in range(0, whole, executor.hop):
        pieces.append(timed_push(executor, wav[first:first + executor.hop], seconds, executor.host_seconds))
    pieces.append(executor.finish(wav[whole:]))
    return np.concatenate(pieces, axis=-1), seconds


def latency_record(executor: StreamingExecutor, per_hop: list[float], rate: int) -> dict:
    hop_s = executor.hop / rate
    ms = np.array(per_hop) * 1e3
    host = np.array(executor.host_seconds[:len(per_hop)] or [0.0]) * 1e3  # outside the device calls
    return {
        "hop_samples": executor.hop, "hop_ms": 1e3 * hop_s, "tile_w": executor.tile_w,
        "window_delay_samples": executor.delay,
        "algorithmic_latency_ms": 1e3 * (executor.hop + executor.delay) / rate,
        "hops": len(per_hop), "per_hop_compute_ms": {"p50": float(np.percentile(ms, 50)),
                                                     "p95": float(np.percentile(ms, 95)), "max": float(ms.max()),
                                                     "mean": float(ms.mean())},
        "rtf": float(ms.sum() / 1e3 / (len(per_hop) * hop_s)),
        "deadline_misses": int(np.sum(ms > 1e3 * hop_s)),
        "stage_calls_per_hop": executor.stage_calls / max(len(per_hop) + 1, 1),
        "host_ms_per_hop": {"p50": float(np.percentile(host, 50)), "p95": float(np.percentile(host, 95)),
                            "mean": float(host.mean())},
    }


def plot_latency(path: Path, record: dict, per_hop_ms: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(per_hop_ms, bins=40, color="C0")
    hop_ms = record["latency"]["hop_ms"]
    ax.axvline(hop_ms, color="C3", lw=1, label=f"deadline: the hop, {hop_ms:g} ms")
    p95 = record["latency"]["per_hop_compute_ms"]["p95"]
    ax.axvline(p95, color="black", lw=0.8, ls="--", label=f"p95 {p95:.2f} ms")
    predicted = record.get("device_prediction", {}).get("device_ms_per_hop")
    if predicted is not None:
        ax.axvline(predicted, color="C2", lw=1, ls=":", label=f"predicted Hailo-8L device {predicted:.2f} ms")
    ax.set_xlabel("compute per hop on this machine (ms)")
    ax.set_ylabel("hops")
    ax.set_title(f"{record['model_source']}: {record['latency']['hops']} hops, backend {record['backend']}, "
                 f"{record['latency']['deadline_misses']} deadline misses", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)


@dataclasses.dataclass(frozen=True)
class StreamRequest:
    """``stream``: a file in simulated real time (``input``) or ``live_seconds`` of a sound card,
    in hops of ``hop_ms``, on the plan ``plan_kind`` picks; ``sources``: the file's ground truth.
    ``subtype``: the WAVs' sample format (default PCM_16 for a file; live WAVs are written as the
    hops come, before their peak is known, so only FLOAT). A one-output model's file stream is
    written at the input's speech level and polarity (``audio.level``) unless ``raw_output``; a
    live stream's WAVs keep the raw output (written before the whole input is known)."""

    source: ModelSource
    out: Path
    input: str | None = None
    live_seconds: float | None = None
    hop_ms: float = 16.0
    backend: BackendOptions = BackendOptions()
    options: PlanOptions = PlanOptions()
    device: DeviceModel = DeviceModel()
    plan_kind: str = "auto"
    max_width: int = DEFAULT_MAX_WIDTH
    sources: tuple[str, ...] = ()
    play: str | None = None
    subtype: str | None = None
    raw_output: bool = False

    def __post_init__(self) -> None:
        if self.input is not None and self.live_seconds is not None:
            raise UserError("pass an input file, or --live (not both)")
        if self.live_seconds is not None and self.subtype not in (None, "FLOAT"):
            raise UserError(f"--subtype {self.subtype} with --live: live WAVs are written as the hops come, before "
                            "their peak is known, so a PCM format could only clip them; drop --subtype (FLOAT)")

    @property
    def stem(self) -> str:
        return "live" if self.input is None else Path(self.input).stem


@dataclasses.dataclass
class StreamResult:
    """What a stream made: input (T,), streamed output (n_src, T), per-hop compute (s), the
    chosen plan, the record ``stream_run.json`` holds, and the live loop's record."""

    wav: np.ndarray
    streamed: np.ndarray
    per_hop: list[float]
    choice: StreamChoice
    record: dict
    live: dict | None = None


def _inputs(request: StreamRequest) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """The file (None live) and its ground truth, read and checked; the outputs guarded."""
    from ..audio.io import load_audio

    config, out = request.source.config, request.out
    if request.input is None and request.live_seconds is None:
        raise UserError("pass an input file, or --live (not both)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; pass a folder (it is created if missing)")
    if request.sources and (request.live_seconds is not None or len(request.sources) != config.n_src):
        raise UserError(f"--s1/--s2 are the ground truth of the input file: pass {config.n_src} of them with a file")
    wav = None if request.input is None else load_audio(request.input, config.sample_rate).wav
    if wav is not None and len(wav) < config.kernel_size:
        raise UserError(f"{request.input} holds {len(wav)} sample(s), fewer than one encoder window "
                        f"({config.kernel_size}); pass a longer recording")
    if wav is not None:
        refuse_unless_fits(config.forward_bytes(len(wav)), f"streaming {request.input} (the offline "
                           "model it is compared with runs the whole file)", "pass a shorter recording")
    truth = [load_audio(path, config.sample_rate, allow_silent=True).wav for path in request.sources]
    if request.live_seconds is not None:
        sounddevice_module()  # no sound card: say so before any export
    stem = request.stem
    check_run_files(request.source.given() + request.backend.given() + [("the input", request.input)]
                    + [(f"the --s{i} reference", p) for i, p in enumerate(request.sources, 1)],
                    [out / f"{stem}_s{i}.wav" for i in range(1, config.n_src + 1)] + [out / f"{stem}_input.wav"]
                    + [out / "stream_run.json", out / "stream_latency.png"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    return wav, truth


def open_streamer(request: StreamRequest, report: Report = print) -> tuple[Run, StreamingExecutor, StreamChoice]:
    """The request's streaming run (``pipeline.streaming.open_stream``), exporting into ``out/onnx``."""
    spec = StreamSpec(source=request.source, hop_ms=request.hop_ms, backend=request.backend, device=request.device,
                      options=request.options, plan_kind=request.plan_kind, max_width=request.max_width,
                      scratch=request.out / "onnx")
    return open_stream(spec, report)


def run_stream(request: StreamRequest, wav: np.ndarray | None, truth: list[np.ndarray],
               report: Report = print) -> StreamResult:
    """Opens the run, streams the file or the card through it, and judges the output against the
    offline model on every sample."""
    run, executor, choice = open_streamer(request, report)
    with run:
        report(f"stream: hops of {executor.hop} samples ({request.hop_ms:g} ms), plan {choice.kind} "
               f"({len(executor.plan.stages)} device calls per hop), backend {request.backend.name}; {choice.reason}")
        live = None
        if wav is None:
            per_hop: list[float] = []
            push = lambda block: timed_push(executor, block, per_hop, executor.host_seconds)  # noqa: E731
            wav, streamed, live = stream_live(executor, push, request.live_seconds, request.out, request.stem,
                                              request.play, report)
            if not per_hop:
                raise UserError("stream: interrupted before the first hop; nothing to compare")
        else:
            streamed, per_hop = simulate(executor, wav)
    if not np.isfinite(streamed).all():
        raise UserError("stream: the streamed output holds NaN/Inf values (the model overflows on this input: check "
                        "the checkpoint's weights); nothing written")
    record = stream_record(request, executor, choice, wav, streamed, per_hop, truth)
    return StreamResult(wav, streamed, per_hop, choice, record | ({"live": live} if live else {}), live)


def stream_record(request: StreamRequest, executor, choice: StreamChoice, wav: np.ndarray, streamed: np.ndarray,
                  per_hop: list[float], truth: list[np.ndarray]) -> dict:
    """``stream_run.json``: latency, parity with the offline model, the device prediction, and
    with ground truth the SI-SNR(i)."""
    from ..metrics.separation import score_separation

    rate = request.source.config.sample_rate
    record = {
        **request.source.to_json(), "input": request.input or "live", "seconds": len(wav) / rate,
        "backend": request.backend.name, "plan": executor.plan.options.to_json(), "stream_plan": choice.to_json(),
        "latency": latency_record(executor, per_hop, rate),
        "parity_vs_offline": None if request.source.model is None else offline_parity(request.source.model, wav,
                                                                                       streamed),
        "device_prediction": choice.prediction,
    }
    if truth:
        length = min(len(wav), *(len(t) for t in truth))
        score = score_separation(streamed[:, :length], np.stack([t[:length] for t in truth]), wav[:length])
        record.update({"sources": list(request.sources), "si_snr_db": list(score.si_snr),
                       "si_snri_db": score.mean_si_snri})
    return record


def offline_parity(model, wav: np.ndarray, streamed: np.ndarray) -> dict:
    """The streamed output against the offline model on every sample (the stream flushes)."""
    from ..metrics.separation import si_snr
    from ..parity.compare import diff_tensor

    final = len(wav)
    offline = reference_separation(model, wav)
    diff = diff_tensor("stream_vs_offline", streamed[:, :final], offline[:, :final])
    return {"max_abs": diff.max_abs, "bound": diff.bound, "all_close": diff.all_close, "samples_compared": final,
            "si_snr_db": float(np.mean([si_snr(streamed[i, :final], offline[i, :final]) for i in range(len(offline))]))}


def write_stream(request: StreamRequest, result: StreamResult) -> None:
    """The sources (a file's, in ``subtype``; live ones were written as they came), the JSON, the plot."""
    from ..audio.io import pcm_safe_gain, save_audio
    from ..audio.level import match_input, raw_output

    rate, out = request.source.config.sample_rate, request.out
    if result.live is None:
        subtype = request.subtype or "PCM_16"
        one_output = len(result.streamed) == 1
        level = match_input(result.streamed[0], result.wav) if one_output and not request.raw_output else raw_output()
        streamed = result.streamed * level.gain
        gain = pcm_safe_gain(streamed, subtype)
        for index, track in enumerate(streamed, start=1):
            save_audio(out / f"{request.stem}_s{index}.wav", track * gain, rate, subtype)
        result.record["subtype"], result.record["gain"] = subtype, gain
        if one_output:
            result.record["level"] = level.to_json()
    elif len(result.streamed) == 1:
        result.record["level"] = raw_output().to_json() | {"method": "raw model output (live: written as it came)"}
    result.record["latency_plot"] = "stream_latency.png" if _can_plot() else None
    write_json(out / "stream_run.json", result.record)
    if result.record["latency_plot"]:
        plot_latency(out / "stream_latency.png", result.record, np.array(result.per_hop) * 1e3)


def _can_plot() -> bool:
    """matplotlib is there (the device side installs without it: the JSON holds the same numbers)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def stream_summary(result: StreamResult, rate: int) -> list[str]:
    """What `stream` says when it is done."""
    record, latency, prediction = result.record, result.record["latency"], result.choice.prediction
    parity, c = record["parity_vs_offline"], latency["per_hop_compute_ms"]
    lines = [f"stream: SI-SNR {', '.join(f'{v:.2f}' for v in record['si_snr_db'])} dB, SI-SNRi "
             f"{record['si_snri_db']:+.2f} dB against the ground truth"] if "si_snri_db" in record else []
    lines.append(
        f"stream: algorithmic latency {latency['algorithmic_latency_ms']:.1f} ms (hop {latency['hop_ms']:g} + "
        f"window {1e3 * latency['window_delay_samples'] / rate:g}); compute per hop p50 {c['p50']:.2f} / p95 "
        f"{c['p95']:.2f} / max {c['max']:.2f} ms, RTF {latency['rtf']:.3f}, {latency['deadline_misses']} of "
        f"{latency['hops']} hops missed the deadline; host work outside the device calls p50 "
        f"{latency['host_ms_per_hop']['p50']:.2f} ms per hop; " + (
            f"vs offline max_abs {parity['max_abs']:.1e} (bound {parity['bound']:.1e}) over all "
            f"{parity['samples_compared']} samples" if parity else "no offline model to compare with (run from an "
            "export without its checkpoint: pass --model to compare)"))
    lines.append(f"stream: predicted {prediction['device']} behind a Pi 5 PCIe {prediction['link']} x1: "
                 f"{prediction['device_ms_per_hop']:.2f} ms device time per hop ({prediction['calls_per_hop']} calls, "
                 f"{prediction['boundary_bytes_per_hop']:.0f} bytes across the link), end-to-end latency "
                 f"{prediction['end_to_end_latency_ms']:.1f} ms")
    if not record.get("latency_plot", True):
        lines.append("stream: matplotlib is not installed, so no stream_latency.png (its numbers are in the JSON)")
    live = result.live
    if live is not None:
        lines.append(f"stream: live loop: {live['input_overflows']} input overflow(s), {live['output_underflows']} "
                     f"output underflow(s), {live['playback_underruns']} playback underrun(s)"
                     + ("; interrupted (the WAVs are whole)" if live["interrupted"] else ""))
    return lines


def stream_command(request: StreamRequest, report: Report = print) -> int:
    """Streams a file (simulated real time) or the sound card; exit 1 when the output is not the
    offline model's, 130 when Ctrl-C stopped a live stream (its WAVs are whole)."""
    wav, truth = _inputs(request)
    result = run_stream(request, wav, truth, report)
    write_stream(request, result)
    for line in stream_summary(result, request.source.config.sample_rate):
        report(line)
    report(f"stream: {request.out / 'stream_run.json'}")
    if result.live is not None and result.live["interrupted"]:
        return 130
    parity = result.record["parity_vs_offline"]
    return 0 if parity is None or parity["all_close"] else 1
