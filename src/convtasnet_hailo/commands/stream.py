"""`stream`: real-time separation of a causal model hop by hop, simulated from a file or live from
a sound card: latency, per-hop compute, deadline misses, equality with the offline model, the
scores against a file's ground truth (SI-SNR(i), PESQ, STOI), and the cost model's per-hop device
time on a Hailo-8L behind a Pi 5.

Writes ``<stem>_s<i>.wav`` (in ``run``: a live stream's as the hops come), ``stream_run.json`` and
``stream_latency.png`` (in ``write``). Exit 1 when the output is not the offline model's, 130 when
Ctrl-C stopped a live stream (its WAVs are whole)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ..audio.level import LevelMatch, match_input, raw_output
from ..errors import UserError
from ..guard import check_run_files
from ..model.source import ModelSource
from ..plan.cost_model import DeviceModel
from ..plan.options import DEFAULT_MAX_WIDTH, PlanOptions
from ..resources import refuse_unless_fits
from ..runs.run_folder import check_out_folder, make_out_folder, write_json
from ..runtime.backend_setup import BackendOptions
from ..runtime.stream_choice import STATEFUL, StreamChoice
from ..runtime.streaming import StreamSpec, open_stream
from ..stream.live import sounddevice_module, stream_live
from ..stream.realtime import (
    Latency,
    LatencyPlot,
    OfflineParity,
    measure_latency,
    offline_parity,
    plot_latency,
    simulate,
    timed_push,
)

log = logging.getLogger(__name__)

RUN_FILE = "stream_run.json"
PLOT_FILE = "stream_latency.png"


@dataclasses.dataclass(frozen=True)
class Request:
    """A file in simulated real time (``input``) or ``live_seconds`` of a sound card, in hops of
    ``hop_ms``, on the plan ``plan_kind`` picks; ``sources``: the file's ground truth.
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
            raise UserError(
                f"--subtype {self.subtype} with --live: live WAVs are written as the hops come, before "
                "their peak is known, so a PCM format could only clip them; drop --subtype (FLOAT)"
            )

    @property
    def stem(self) -> str:
        return "live" if self.input is None else Path(self.input).stem


@dataclasses.dataclass(frozen=True)
class LiveRecord:
    """What the sound card reported over a live stream, and whether Ctrl-C (or SIGTERM) or a card
    that stopped delivering ended it."""

    input_overflows: int
    output_underflows: int
    playback_underruns: int
    interrupted: bool
    stalled: bool = False

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Written:
    """How the WAVs were written: a file's sample format and anti-clipping gain; the level
    match of a one-output model (None for a model with several)."""

    subtype: str | None
    gain: float | None
    level: dict | None


@dataclasses.dataclass(frozen=True)
class Scores:
    """A file stream's output against its ground truth (``sources``): per source SI-SNR (dB) under
    the best permutation, their mean SI-SNRi, and the means of PESQ and STOI (``metrics.quality``)
    as (input, output)."""

    si_snr_db: tuple[float, ...]
    si_snri_db: float
    pesq: tuple[float, float]
    stoi: tuple[float, float]

    def to_json(self) -> dict:
        return {
            "si_snr_db": list(self.si_snr_db),
            "si_snri_db": self.si_snri_db,
            "pesq_input": self.pesq[0],
            "pesq_output": self.pesq[1],
            "stoi_input": self.stoi[0],
            "stoi_output": self.stoi[1],
        }


@dataclasses.dataclass(frozen=True)
class StreamReport:
    """A finished stream: its timing, its equality with the offline model (None without one: an
    export without its checkpoint), the scores against the ground truth, the plan chosen (and
    the cost model's prediction for it), the live loop's record, and how the WAVs were written.
    ``model``: the model source's record (``ModelSource.to_json``); ``plan``: the plan options'."""

    out: Path
    model: dict
    input: str
    sample_rate: int
    seconds: float
    backend: str
    plan: dict
    choice: StreamChoice
    latency: Latency
    parity: OfflineParity | None
    sources: tuple[str, ...]
    scores: Scores | None
    live: LiveRecord | None
    written: Written
    per_hop_ms: tuple[float, ...]
    can_plot: bool
    macs_per_hop: int | None = None  # the stateful graph's (None for a device plan: its prediction has them)

    @property
    def gmac_per_s(self) -> float | None:
        """The stateful graph's multiply-accumulates per second of host time at the p50 hop."""
        p50 = self.latency.per_hop_compute_ms.p50
        return None if self.macs_per_hop is None or p50 <= 0 else self.macs_per_hop / p50 / 1e6

    @property
    def exit_status(self) -> int:
        if self.live is not None and self.live.interrupted:
            return 130
        if self.live is not None and self.live.stalled:
            return 1
        return 0 if self.parity is None or self.parity.all_close else 1

    def to_json(self) -> dict:
        """``stream_run.json``."""
        record = {
            **self.model,
            "input": self.input,
            "seconds": self.seconds,
            "backend": self.backend,
            "plan": self.plan,
            "stream_plan": self.choice.to_json(),
            "stateful_macs_per_hop": self.macs_per_hop,
            "stateful_gmac_per_s_at_p50": self.gmac_per_s,
            "latency": self.latency.to_json(),
            "parity_vs_offline": None if self.parity is None else self.parity.to_json(),
            "device_prediction": self.choice.prediction,
        }
        if self.scores is not None:
            record.update({"sources": list(self.sources), **self.scores.to_json()})
        if self.live is not None:
            record["live"] = self.live.to_json()
        if self.written.subtype is not None:
            record["subtype"], record["gain"] = self.written.subtype, self.written.gain
        if self.written.level is not None:
            record["level"] = self.written.level
        record["latency_plot"] = PLOT_FILE if self.can_plot else None
        return record

    def lines(self) -> list[str]:
        return _summary(self) + [f"stream: {self.out / RUN_FILE}"]


def _summary(report: StreamReport) -> list[str]:
    latency, prediction, parity, s = report.latency, report.choice.prediction, report.parity, report.scores
    c = latency.per_hop_compute_ms
    lines = (
        [
            f"stream: SI-SNR {', '.join(f'{v:.2f}' for v in s.si_snr_db)} dB, SI-SNRi "
            f"{s.si_snri_db:+.2f} dB against the ground truth; PESQ {s.pesq[0]:.2f} -> {s.pesq[1]:.2f}, "
            f"STOI {s.stoi[0]:.2f} -> {s.stoi[1]:.2f} (input -> output)"
        ]
        if s is not None
        else []
    )
    lines.append(
        f"stream: algorithmic latency {latency.algorithmic_latency_ms:.1f} ms (hop {latency.hop_ms:g} + "
        f"window {1e3 * latency.window_delay_samples / report.sample_rate:g}); compute per hop p50 {c.p50:.2f} / p95 "
        f"{c.p95:.2f} / max {c.max:.2f} ms, RTF {latency.rtf:.3f}, {latency.deadline_misses} of "
        f"{latency.hops} hops missed the deadline; host work outside the device calls p50 "
        f"{latency.host_ms_per_hop.p50:.2f} ms per hop; "
        + (
            f"vs offline max_abs {parity.max_abs:.1e} (bound {parity.bound:.1e}) over all "
            f"{parity.samples_compared} samples"
            if parity
            else "no offline model to compare with (run from an export without its checkpoint: pass --model to compare)"
        )
    )
    lines.append(
        f"stream: plan {report.choice.kind}, chosen by {report.choice.basis.value}"
        + (
            f" ({report.macs_per_hop:,} MACs per hop: {report.gmac_per_s:.2f} GMAC/s at the p50 hop)"
            if report.gmac_per_s is not None
            else ""
        )
    )
    lines.append(
        f"stream: predicted {prediction['device']} behind a Pi 5 PCIe {prediction['link']} x1 "
        f"({report.choice.device_kind} plan): "
        f"{prediction['device_ms_per_hop']:.2f} ms device time per hop ({prediction['calls_per_hop']} calls, "
        f"{prediction['boundary_bytes_per_hop']:.0f} bytes across the link), end-to-end latency "
        f"{prediction['end_to_end_latency_ms']:.1f} ms"
    )
    if not report.can_plot:
        lines.append(f"stream: matplotlib is not installed, so no {PLOT_FILE} (its numbers are in the JSON)")
    live = report.live
    if live is not None:
        lines.append(
            f"stream: live loop: {live.input_overflows} input overflow(s), {live.output_underflows} "
            f"output underflow(s), {live.playback_underruns} playback underrun(s)"
            + ("; interrupted (the WAVs are whole)" if live.interrupted else "")
            + (
                "; the sound card stopped delivering (the WAVs are whole): check its cable or driver"
                if live.stalled
                else ""
            )
        )
    return lines


def _inputs(request: Request) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """The file (None live) and its ground truth, read and checked; the outputs guarded and the
    --out folder made."""
    from ..audio.io import load_audio

    config, out = request.source.config, request.out
    if request.input is None and request.live_seconds is None:
        raise UserError("pass an input file, or --live (not both)")
    check_out_folder(out)
    if request.sources and (request.live_seconds is not None or len(request.sources) != config.n_src):
        raise UserError(f"--s1/--s2 are the ground truth of the input file: pass {config.n_src} of them with a file")
    wav = None if request.input is None else load_audio(request.input, config.sample_rate).wav
    if wav is not None and len(wav) < config.kernel_size:
        raise UserError(
            f"{request.input} holds {len(wav)} sample(s), fewer than one encoder window "
            f"({config.kernel_size}); pass a longer recording"
        )
    if wav is not None:
        refuse_unless_fits(
            config.forward_bytes(len(wav)),
            f"streaming {request.input} (the offline model it is compared with runs the whole file)",
            "pass a shorter recording",
        )
    truth = [load_audio(path, config.sample_rate, allow_silent=True).wav for path in request.sources]
    if request.live_seconds is not None:
        sounddevice_module()  # no sound card: say so before any export
    stem = request.stem
    check_run_files(
        request.source.given()
        + request.backend.given()
        + [("the input", request.input)]
        + [(f"the --s{i} reference", p) for i, p in enumerate(request.sources, 1)],
        [out / f"{stem}_s{i}.wav" for i in range(1, config.n_src + 1)]
        + [out / f"{stem}_input.wav"]
        + [out / RUN_FILE, out / PLOT_FILE],
    )
    make_out_folder(out)
    return wav, truth


@dataclasses.dataclass(frozen=True)
class _Streamed:
    """A stream's raw outcome: input (T,), output (n_src, T), per-hop compute (s)."""

    wav: np.ndarray
    streamed: np.ndarray
    per_hop: list[float]
    latency: Latency
    choice: StreamChoice
    plan: dict
    live: LiveRecord | None
    macs_per_hop: int | None


def _stream(request: Request, wav: np.ndarray | None) -> _Streamed:
    """Opens the streaming run (exporting into ``out/onnx``), streams the file or the card
    through it."""
    spec = StreamSpec(
        source=request.source,
        hop_ms=request.hop_ms,
        backend=request.backend,
        device=request.device,
        options=request.options,
        plan_kind=request.plan_kind,
        max_width=request.max_width,
        scratch=request.out / "onnx",
    )
    run, executor, choice = open_stream(spec)
    with run:
        calls = "one onnxruntime call" if choice.kind == STATEFUL else f"{len(choice.plan.stages)} device calls"
        log.info(
            f"stream: hops of {executor.hop} samples ({request.hop_ms:g} ms), plan {choice.kind} "
            f"({calls} per hop), backend {request.backend.name}; {choice.reason}"
        )
        live = None
        if wav is None:
            per_hop: list[float] = []
            push = lambda block: timed_push(executor, block, per_hop, executor.host_seconds)  # noqa: E731
            wav, streamed, loop = stream_live(
                executor, push, request.live_seconds, request.out, request.stem, request.play
            )
            live = LiveRecord(**loop)
            if not per_hop:
                raise UserError("stream: interrupted before the first hop; nothing to compare")
        else:
            streamed, per_hop = simulate(executor, wav)
    if not np.isfinite(streamed).all():
        raise UserError(
            "stream: the streamed output holds NaN/Inf values (the model overflows on this input: check "
            "the checkpoint's weights); nothing written"
        )
    latency = measure_latency(executor, per_hop, request.source.config.sample_rate)
    macs = executor.record.macs_per_hop if choice.kind == STATEFUL else None
    return _Streamed(wav, streamed, per_hop, latency, choice, choice.plan.options.to_json(), live, macs)


def _write_wavs(request: Request, streamed: _Streamed) -> Written:
    """A file's sources in ``subtype`` (scaled down together rather than clipped; a one-output
    model's at the input's level and sign unless raw); a live stream's were written as they came."""
    from ..audio.io import pcm_safe_gain, save_audio

    one_output = len(streamed.streamed) == 1
    if streamed.live is not None:
        level = raw_output().to_json() | {"method": "raw model output (live: written as it came)"}
        return Written(None, None, level if one_output else None)
    subtype = request.subtype or "PCM_16"
    level: LevelMatch = (
        match_input(streamed.streamed[0], streamed.wav) if one_output and not request.raw_output else raw_output()
    )
    tracks = streamed.streamed * level.gain
    gain = pcm_safe_gain(tracks, subtype)
    for index, track in enumerate(tracks, start=1):
        save_audio(
            request.out / f"{request.stem}_s{index}.wav", track * gain, request.source.config.sample_rate, subtype
        )
    return Written(subtype, gain, level.to_json() if one_output else None)


def _scores(request: Request, streamed: _Streamed, truth: list[np.ndarray]) -> Scores | None:
    """The raw output (n_src, T) against the ground truth over their common length (PESQ and STOI
    ignore the level match the WAVs get, SI-SNR ignores scale and sign)."""
    from ..metrics.quality import quality_scores
    from ..metrics.separation import score_separation

    if not truth:
        return None
    length = min(len(streamed.wav), *(len(t) for t in truth))
    wav, estimates = streamed.wav[:length], streamed.streamed[:, :length]
    references = np.stack([t[:length] for t in truth])
    score = score_separation(estimates, references, wav)
    quality = quality_scores(estimates[list(score.permutation)], references, wav, request.source.config.sample_rate)
    return Scores(
        tuple(score.si_snr),
        score.mean_si_snri,
        (quality["pesq_mixture_mean"], quality["pesq_hailo_mean"]),
        (quality["stoi_mixture_mean"], quality["stoi_hailo_mean"]),
    )


def _can_plot() -> bool:
    """matplotlib is there (the device side installs without it: the JSON holds the same numbers)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def run(request: Request) -> StreamReport:
    """Streams the file (simulated real time) or the sound card, judges the output against the
    offline model on every sample, and writes the WAVs."""
    wav, truth = _inputs(request)
    streamed = _stream(request, wav)
    model = request.source.model
    parity = None if model is None else offline_parity(model, streamed.wav, streamed.streamed)
    written = _write_wavs(request, streamed)
    rate = request.source.config.sample_rate
    return StreamReport(
        out=request.out,
        model=request.source.to_json(),
        input=request.input or "live",
        sample_rate=rate,
        seconds=len(streamed.wav) / rate,
        backend=request.backend.name,
        plan=streamed.plan,
        choice=streamed.choice,
        latency=streamed.latency,
        parity=parity,
        sources=tuple(request.sources),
        scores=_scores(request, streamed, truth),
        live=streamed.live,
        written=written,
        per_hop_ms=tuple(1e3 * s for s in streamed.per_hop),
        can_plot=_can_plot(),
        macs_per_hop=streamed.macs_per_hop,
    )


def write(report: StreamReport) -> None:
    """``stream_run.json`` and, where matplotlib is installed, ``stream_latency.png``."""
    write_json(report.out / RUN_FILE, report.to_json())
    if report.can_plot:
        latency = report.latency
        title = (
            f"{report.model['model_source']}: {latency.hops} hops, backend {report.backend}, "
            f"{latency.deadline_misses} deadline misses"
        )
        plot = LatencyPlot(
            title, latency.hop_ms, latency.per_hop_compute_ms.p95, report.choice.prediction.get("device_ms_per_hop")
        )
        plot_latency(report.out / PLOT_FILE, plot, np.array(report.per_hop_ms))
