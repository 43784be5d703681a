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

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends.setup import BackendOptions, open_backend
from ..bench.cost_model import DeviceModel, stream_prediction
from ..bench.workflow import StageTimer
from ..errors import UserError
from ..guard import check_run_files
from ..resources import refuse_unless_fits
from ..model.source import ModelSource
from ..plan.builder import PlanOptions
from ..runs.run_folder import write_json
from ..separation.separator import reference_separation
from ..plan.packing import ExecutionMode
from ..plan.rf_windows import DEFAULT_MAX_WIDTH, hop_samples
from .choice import choose_stream_plan
from .executor import StreamingExecutor, check_streamable
from ..tiling.window_executor import WindowStreamingExecutor

Report = Callable[[str], None]


def open_streamer(source: ModelSource, backend: BackendOptions, hop_ms: float, layout: PlanOptions, scratch: Path,
                  device: DeviceModel | None = None, plan_kind: str = "auto", max_width: int = DEFAULT_MAX_WIDTH,
                  report: Report = print):
    """The streaming executor for the cheapest fitting plan (``stream.choice``), and the choice."""
    config = source.model.config
    hop = hop_samples(hop_ms, config.sample_rate, config.stride)
    choice = choose_stream_plan(source.model, hop, device or DeviceModel(), layout, plan_kind, max_width)
    plan = choice.plan
    check_streamable(plan)  # before any export
    width = plan.rf_window or hop // config.stride
    opened = open_backend(backend, plan, source.to_json(), [width], scratch, report)
    timed = StageTimer(opened)  # the device calls' share of a hop; the rest is host work
    executor = WindowStreamingExecutor(plan, timed, hop) if plan.rf_window else StreamingExecutor(plan, timed, hop)
    executor.host_seconds = []
    read = getattr(opened, "mode", None)  # a device backend runs the mode its HEFs were built for
    if isinstance(read, ExecutionMode) and read is not choice.mode:
        choice = dataclasses.replace(choice, mode=read, prediction=stream_prediction(plan, hop, device or DeviceModel(),
                                                                                     read),
                                     reason=f"{choice.kind} as the HEFs in --hef-dir run it ({read.value})")
    return executor, choice


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


def stream_command(source: ModelSource, input_path: str | None, hop_ms: float, backend: BackendOptions,
                   layout: PlanOptions, out: Path, device: DeviceModel, live_seconds: float | None = None,
                   sources: list[str] | None = None, report: Report = print, plan_kind: str = "auto",
                   max_width: int = DEFAULT_MAX_WIDTH, play: str | None = None) -> int:
    """Streams a file (simulated real time) or ``live_seconds`` of a sound card's input; with
    ``sources`` (the file's ground truth), scores the streamed output (SI-SNR, SI-SNRi)."""
    from ..audio.io import load_audio, pcm_safe_gain, save_audio
    from ..metrics.separation import si_snr
    from ..parity.compare import diff_tensor

    rate = source.model.config.sample_rate
    if (input_path is None) == (live_seconds is None):
        raise UserError("pass an input file, or --live (not both)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; pass a folder (it is created if missing)")
    n_src = source.model.config.n_src
    if sources and (live_seconds is not None or len(sources) != n_src):
        raise UserError(f"--s1/--s2 are the ground truth of the input file: pass {n_src} of them with a file")
    wav = None if live_seconds is not None else load_audio(input_path, rate).wav
    if wav is not None and len(wav) < source.model.config.kernel_size:
        raise UserError(f"{input_path} holds {len(wav)} sample(s), fewer than one encoder window "
                        f"({source.model.config.kernel_size}); pass a longer recording")
    if wav is not None:
        refuse_unless_fits(source.model.config.forward_bytes(len(wav)), f"streaming {input_path} (the offline "
                           "model it is compared with runs the whole file)", "pass a shorter recording")
    truth = [load_audio(path, rate, allow_silent=True).wav for path in sources or []]
    if live_seconds is not None:
        _sounddevice()  # no sound card: say so before any export
    stem = "live" if input_path is None else Path(input_path).stem
    check_run_files(source.given() + backend.given() + [("the input", input_path)]
                    + [(f"the --s{i} reference", p) for i, p in enumerate(sources or (), 1)],
                    [out / f"{stem}_s{i}.wav" for i in range(1, n_src + 1)] + [out / f"{stem}_input.wav"]
                    + [out / "stream_run.json", out / "stream_latency.png"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    executor, choice = open_streamer(source, backend, hop_ms, layout, out / "onnx", device, plan_kind, max_width, report)
    report(f"stream: hops of {executor.hop} samples ({hop_ms:g} ms), plan {choice.kind} "
           f"({len(executor.plan.stages)} device calls per hop), backend {backend.name}; {choice.reason}")
    live = None
    if wav is None:
        wav, streamed, per_hop, live = stream_live(executor, live_seconds, rate, out, stem, play, report)
        if not per_hop:
            raise UserError("stream: interrupted before the first hop; nothing to compare")
    else:
        streamed, per_hop = simulate(executor, wav)
    if not np.isfinite(streamed).all():
        raise UserError("stream: the streamed output holds NaN/Inf values (the model overflows on this input: check "
                        "the checkpoint's weights); nothing written")
    latency = latency_record(executor, per_hop, rate)
    offline = reference_separation(source.model, wav)
    final = len(wav)  # every sample: the stream flushes (``finish``)
    diff = diff_tensor("stream_vs_offline", streamed[:, :final], offline[:, :final])
    prediction = choice.prediction
    record = {
        **source.to_json(), "input": input_path or "live", "seconds": len(wav) / rate, "backend": backend.name,
        "plan": executor.plan.options.to_json(), "stream_plan": choice.to_json(), "latency": latency,
        "parity_vs_offline": {"max_abs": diff.max_abs, "bound": diff.bound, "all_close": diff.all_close,
                              "samples_compared": final,
                              "si_snr_db": float(np.mean([si_snr(streamed[i, :final], offline[i, :final])
                                                          for i in range(len(offline))]))},
        "device_prediction": prediction,
    }
    if truth:
        from ..metrics.separation import score_separation

        length = min(len(wav), *(len(t) for t in truth))
        score = score_separation(streamed[:, :length], np.stack([t[:length] for t in truth]), wav[:length])
        record.update({"sources": list(sources), "si_snr_db": list(score.si_snr),
                       "si_snri_db": score.mean_si_snri})
        report(f"stream: SI-SNR {', '.join(f'{v:.2f}' for v in score.si_snr)} dB, SI-SNRi "
               f"{score.mean_si_snri:+.2f} dB against the ground truth")
    if live is not None:
        record["live"] = live
    else:  # live WAVs were written as the hops came, in float
        gain = pcm_safe_gain(streamed, "PCM_16")
        for index, track in enumerate(streamed, start=1):
            save_audio(out / f"{stem}_s{index}.wav", track * gain, rate)
    write_json(out / "stream_run.json", record)
    plot_latency(out / "stream_latency.png", record, np.array(per_hop) * 1e3)
    c = latency["per_hop_compute_ms"]
    report(f"stream: algorithmic latency {latency['algorithmic_latency_ms']:.1f} ms (hop {latency['hop_ms']:g} + "
           f"window {1e3 * executor.delay / rate:g}); compute per hop p50 {c['p50']:.2f} / p95 {c['p95']:.2f} / max "
           f"{c['max']:.2f} ms, RTF {latency['rtf']:.3f}, {latency['deadline_misses']} of {latency['hops']} hops "
           f"missed the deadline; host work outside the device calls p50 {latency['host_ms_per_hop']['p50']:.2f} ms "
           f"per hop; vs offline max_abs {diff.max_abs:.1e} (bound {diff.bound:.1e}) over all {final} samples")
    report(f"stream: predicted {prediction['device']} behind a Pi 5 PCIe {prediction['link']} x1: "
           f"{prediction['device_ms_per_hop']:.2f} ms device time per hop ({prediction['calls_per_hop']} calls, "
           f"{prediction['boundary_bytes_per_hop']:.0f} bytes across the link), end-to-end latency "
           f"{prediction['end_to_end_latency_ms']:.1f} ms; {out / 'stream_run.json'}")
    if live is not None:
        report(f"stream: live loop: {live['input_overflows']} input overflow(s), {live['output_underflows']} output "
               f"underflow(s), {live['playback_underruns']} playback underrun(s)"
               + ("; interrupted (the WAVs are whole)" if live["interrupted"] else ""))
        if live["interrupted"]:
            return 130
    return 0 if diff.all_close else 1


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise UserError(f"--live needs the sounddevice package and PortAudio ({error}): "
                        "pip install 'convtasnet-hailo[live]' and apt install libportaudio2") from None
    try:
        sounddevice.query_devices(kind="input")
    except Exception as error:  # PortAudio reports a missing device with its own exception types
        raise UserError(f"no sound card input found ({error}); stream a file instead") from None
    return sounddevice


@contextlib.contextmanager
def _deferred_ctrl_c():
    """SIGINT sets an event the live loop reads between hops (a hop is never cut in half)."""
    import signal
    import threading

    stopped = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGINT, previous)


class _LiveCounts:
    """What the sound card reported and what the loop saw (sounddevice's CallbackFlags)."""

    def __init__(self) -> None:
        self.input_overflows = self.output_underflows = self.playback_underruns = 0
        self.started_playing = False

    def to_json(self) -> dict:
        return {"input_overflows": self.input_overflows, "output_underflows": self.output_underflows,
                "playback_underruns": self.playback_underruns}


def _play_channels(play: str | None, n_src: int) -> list[int] | None:
    """Which sources go to the sound card: one (``--play 2``) or all, one per channel (``both``)."""
    if play is None:
        return None
    if play in ("both", "all"):
        return list(range(n_src))
    if not play.isdigit() or not 1 <= int(play) <= n_src:
        raise UserError(f"--play {play!r}: a source number 1..{n_src}, or both")
    return [int(play) - 1]


def stream_live(executor, seconds: float, rate: int, out: Path, stem: str, play: str | None = None,
                report: Report = print) -> tuple[np.ndarray, np.ndarray, list[float], dict]:
    """``seconds`` from the default input device, each hop pushed as it arrives (sounddevice's
    callback queues blocks of one hop), the sources written as they come (float WAVs, whole at
    any moment: Ctrl-C stops the loop, finishes the stream and closes them) and, with ``play``,
    sent to the default output device. Returns (input, output aligned with it, per-hop compute s,
    the loop's record: overflows, underruns, interrupted)."""
    import contextlib
    import queue

    import soundfile

    sounddevice = _sounddevice()
    n_src = executor.plan.config.n_src
    channels = _play_channels(play, n_src)
    counts, blocks, to_play = _LiveCounts(), queue.Queue(), queue.Queue()
    hops = max(1, int(seconds * rate) // executor.hop)
    inputs, pieces, per_hop = [], [], []

    def arrived(indata, frames, time_info, status) -> None:
        counts.input_overflows += bool(status.input_overflow)
        blocks.put(indata[:, 0].copy())

    def playback(outdata, frames, time_info, status) -> None:
        counts.output_underflows += bool(status.output_underflow)
        try:
            outdata[:] = to_play.get_nowait()
        except queue.Empty:  # the loop has nothing ready for the card: an underrun once playing
            outdata.fill(0)
            counts.playback_underruns += counts.started_playing

    pending = [np.zeros((len(channels or ()), 0), np.float32)]  # samples for the card, not a whole block yet

    def emit(samples: np.ndarray) -> None:
        for writer, track in zip(writers, samples):
            writer.write(track)
        pieces.append(samples)
        if channels is not None:
            ready = np.concatenate([pending[0], samples[channels]], axis=-1)
            whole = ready.shape[-1] // executor.hop * executor.hop
            for first in range(0, whole, executor.hop):
                to_play.put(ready[:, first:first + executor.hop].T.copy())
            pending[0] = ready[:, whole:]
            counts.started_playing = counts.started_playing or whole > 0

    interrupted = False
    report(f"stream: live from {sounddevice.query_devices(kind='input')['name']} for {seconds:g} s"
           + (f", playing source(s) {', '.join(str(c + 1) for c in channels)}" if channels else ""))
    with contextlib.ExitStack() as files:
        writers = [files.enter_context(soundfile.SoundFile(str(out / f"{stem}_s{i}.wav"), "w", rate, 1, "FLOAT"))
                   for i in range(1, n_src + 1)]
        captured = files.enter_context(soundfile.SoundFile(str(out / f"{stem}_input.wav"), "w", rate, 1, "FLOAT"))
        with contextlib.ExitStack() as streams, _deferred_ctrl_c() as stopped:
            streams.enter_context(sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32",
                                                          blocksize=executor.hop, callback=arrived))
            if channels is not None:
                streams.enter_context(sounddevice.OutputStream(samplerate=rate, channels=len(channels),
                                                               dtype="float32", blocksize=executor.hop,
                                                               callback=playback))
            for _ in range(hops):
                if stopped.is_set():  # Ctrl-C: only between hops, so input and output stay whole
                    interrupted = True
                    report("stream: interrupted; finishing the stream and closing its WAVs")
                    break
                block = blocks.get(timeout=10 * executor.hop / rate + 1)
                samples = timed_push(executor, block, per_hop, executor.host_seconds)
                inputs.append(block)
                captured.write(block)
                emit(samples)
        emit(executor.finish())  # the overlap-add tail: the files end where the offline output ends
    wav = np.concatenate(inputs) if inputs else np.zeros(0, np.float32)
    return wav, np.concatenate(pieces, axis=-1)[:, :len(wav)], per_hop, {**counts.to_json(), "interrupted": interrupted}
