"""Real-time separation of a causal model simulated from a file, and what is measured of it (the
`stream` command, ``commands/stream.py``, runs these).

Simulated real time: the file is cut into hops; each hop is pushed to the streaming executor as
if it had just arrived, and the compute it takes is timed. A hop whose compute takes longer than
the hop lasts misses its deadline. Measured: the algorithmic latency (a sample waits up to one
hop to be pushed, then the encoder window's overlap for the last frame it belongs to), per-hop
compute p50 / p95 / max, the RTF, deadline misses, and the streamed output's distance from the
offline model on the same file.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..runs.plot import png_figure
from ..runtime.separator import reference_separation


def timed_push(executor, block: np.ndarray, per_hop: list[float], host: list[float]) -> np.ndarray:
    """One hop pushed; its compute time appended to ``per_hop``, the part outside the device
    calls (what a Pi 5's CPU must keep up with) to ``host``: all of it for the stateful graph,
    whose executor spends no device time (``device_seconds`` stays 0)."""
    device_before, started = executor.device_seconds, time.perf_counter()
    samples = executor.push(block)
    total = time.perf_counter() - started
    per_hop.append(total)
    host.append(total - (executor.device_seconds - device_before))
    return samples


def simulate(executor, wav: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Pushes ``wav`` hop by hop, timing each push, then gives the last partial hop to ``finish``.
    Returns the output, shape (n_src, len(wav)), equal to the offline model's on every sample,
    and the per-hop compute in seconds."""
    pieces, seconds = [], []
    whole = len(wav) // executor.hop * executor.hop
    for first in range(0, whole, executor.hop):
        pieces.append(timed_push(executor, wav[first : first + executor.hop], seconds, executor.host_seconds))
    pieces.append(executor.finish(wav[whole:]))
    return np.concatenate(pieces, axis=-1), seconds


@dataclasses.dataclass(frozen=True)
class Percentiles:
    """Milliseconds per hop: median, 95th percentile, mean, and (compute only) the worst."""

    p50: float
    p95: float
    mean: float
    max: float | None = None

    @classmethod
    def of(cls, ms: np.ndarray, with_max: bool = True) -> Percentiles:
        return cls(
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 95)),
            float(ms.mean()),
            float(ms.max()) if with_max else None,
        )

    def to_json(self) -> dict:
        if self.max is None:
            return {"p50": self.p50, "p95": self.p95, "mean": self.mean}
        return {"p50": self.p50, "p95": self.p95, "max": self.max, "mean": self.mean}


@dataclasses.dataclass(frozen=True)
class Latency:
    """A stream's timing: the hop, the encoder window's delay, the algorithmic latency they make,
    the compute per hop on this machine (and the part outside the device calls, ``host``), the
    RTF and the hops whose compute outlasted the hop (deadline misses)."""

    hop_samples: int
    hop_ms: float
    tile_w: int
    window_delay_samples: int
    algorithmic_latency_ms: float
    hops: int
    per_hop_compute_ms: Percentiles
    rtf: float
    deadline_misses: int
    stage_calls_per_hop: float
    host_ms_per_hop: Percentiles

    def to_json(self) -> dict:
        record = dataclasses.asdict(self)
        record["per_hop_compute_ms"] = self.per_hop_compute_ms.to_json()
        record["host_ms_per_hop"] = self.host_ms_per_hop.to_json()
        return record


def measure_latency(executor, per_hop: list[float], rate: int) -> Latency:
    """The timing of a finished stream from its per-hop compute (seconds); ``executor``: the
    streaming executor ``runtime.streaming.open_stream`` gave (its hop, delay, tile width, calls)."""
    hop_s = executor.hop / rate
    ms = np.array(per_hop) * 1e3
    host = np.array(executor.host_seconds[: len(per_hop)] or [0.0]) * 1e3  # outside the device calls
    return Latency(
        hop_samples=executor.hop,
        hop_ms=1e3 * hop_s,
        tile_w=executor.tile_w,
        window_delay_samples=executor.delay,
        algorithmic_latency_ms=1e3 * (executor.hop + executor.delay) / rate,
        hops=len(per_hop),
        per_hop_compute_ms=Percentiles.of(ms),
        rtf=float(ms.sum() / 1e3 / (len(per_hop) * hop_s)),
        deadline_misses=int(np.sum(ms > 1e3 * hop_s)),
        stage_calls_per_hop=executor.stage_calls / max(len(per_hop) + 1, 1),
        host_ms_per_hop=Percentiles.of(host, with_max=False),
    )


@dataclasses.dataclass(frozen=True)
class LatencyPlot:
    """What the latency figure shows besides the per-hop compute."""

    title: str
    hop_ms: float
    p95_ms: float
    predicted_device_ms: float | None


def plot_latency(path: Path, plot: LatencyPlot, per_hop_ms: np.ndarray) -> None:
    """A histogram of the compute per hop against the deadline (the hop), its p95 and the
    predicted device time per hop."""
    with png_figure(path, figsize=(7, 3.5)) as (fig, ax):
        ax.hist(per_hop_ms, bins=40, color="C0")
        ax.axvline(plot.hop_ms, color="C3", lw=1, label=f"deadline: the hop, {plot.hop_ms:g} ms")
        ax.axvline(plot.p95_ms, color="black", lw=0.8, ls="--", label=f"p95 {plot.p95_ms:.2f} ms")
        if plot.predicted_device_ms is not None:
            ax.axvline(
                plot.predicted_device_ms,
                color="C2",
                lw=1,
                ls=":",
                label=f"predicted Hailo-8L device {plot.predicted_device_ms:.2f} ms",
            )
        ax.set_xlabel("compute per hop on this machine (ms)")
        ax.set_ylabel("hops")
        ax.set_title(plot.title, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()


@dataclasses.dataclass(frozen=True)
class OfflineParity:
    """The streamed output against the offline model over ``samples_compared`` samples."""

    max_abs: float
    bound: float
    all_close: bool
    samples_compared: int
    si_snr_db: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def offline_parity(model, wav: np.ndarray, streamed: np.ndarray) -> OfflineParity:
    """The streamed output against the offline model on every sample (the stream flushes)."""
    from ..metrics.separation import si_snr
    from ..parity.compare import diff_tensor

    final = len(wav)
    offline = reference_separation(model, wav)
    diff = diff_tensor("stream_vs_offline", streamed[:, :final], offline[:, :final])
    si = float(np.mean([si_snr(streamed[i, :final], offline[i, :final]) for i in range(len(offline))]))
    return OfflineParity(diff.max_abs, diff.bound, diff.all_close, final, si)
