"""The audio commands' work: separating files, the forward example, evaluating a LibriMix set.

Every function takes plain values (no argparse); the CLI only parses and calls these.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.io import LoadedAudio, load_audio, pcm_safe_gain, save_audio
from ..audio.librimix import read_metadata, sources_beside
from ..backends.setup import BackendOptions, open_backend
from ..errors import UserError
from ..plan.builder import PlanOptions, PlanPath
from ..model.source import ModelSource
from ..tiling.executor import check_tile_width
from ..runs.plot import plot_separation
from ..runs.run_folder import new_run_dir, write_json
from .forward import ForwardResult, forward_metrics, run_forward
from .segments import SegmentPolicy
from .separator import StitchedSeparator, segment_starts, separate_segmented

#: Inputs longer than this get a progress bar (on a terminal).
PROGRESS_SECONDS = 30.0

Report = Callable[[str], None]


def _progress(total: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="step", leave=False, disable=None if enabled else True)


def separate_audio(separator: StitchedSeparator, audio: LoadedAudio, segment: float | None, overlap: float,
                   label: str) -> np.ndarray:
    """(n_src, T) estimates of one file, whole or in segments."""
    rate = audio.rate
    if segment is None:
        with _progress(separator.n_steps, label, audio.seconds > PROGRESS_SECONDS) as bar:
            return separator(audio.wav, on_step=bar.update)
    seg, ov = round(segment * rate), round(overlap * rate)
    with _progress(len(segment_starts(len(audio.wav), seg, ov)), label, True) as bar:
        return separate_segmented(separator, audio.wav, seg, ov, on_segment=bar.update)


def output_paths(paths: list[str], out: Path, n_src: int) -> list[list[Path]]:
    """``out/<stem>_s<i>.wav`` per input; refuses, before any work, an ``--out`` that is a file
    and two inputs that would write the same files."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; pass a folder (it is created if missing)")
    by_stem: dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in by_stem:
            raise UserError(f"{by_stem[stem]} and {path} would both write {stem}_s1.wav; rename one, or separate "
                            "them into different --out folders")
        by_stem[stem] = path
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    return [[out / f"{Path(path).stem}_s{i}.wav" for i in range(1, n_src + 1)] for path in paths]


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def separate_files(separator: StitchedSeparator, paths: list[str], out: Path, policy: SegmentPolicy, subtype: str,
                   run_info: dict, report: Report = print, warn: Report = _warn) -> list[dict]:
    """Separates every file into ``out/<stem>_s<i>.wav`` and keeps ``separate_run.json`` up to
    date after each file (``complete`` turns true at the end). All inputs are read and checked,
    and every output name is known to be free of collisions, before any separation starts.
    Outputs that would clip in a PCM subtype are scaled down together (said on stderr and in the
    JSON as ``gain``); every file is written atomically, so an interrupt loses no finished file."""
    rate = separator.model.config.sample_rate
    mixtures = [load_audio(path, rate) for path in paths]
    segments = [policy.segment_seconds(audio.seconds) for audio in mixtures]
    targets = output_paths(paths, out, separator.model.config.n_src)
    records: list[dict] = []
    header = {**run_info, "sample_rate": rate, "subtype": subtype, "n_inputs": len(paths)}
    write_json(out / "separate_run.json", {**header, "complete": False, "files": records})
    for path, audio, segment, files in zip(paths, mixtures, segments, targets):
        for note in audio.notes:
            report(f"{path}: {note}")
        started = time.perf_counter()
        estimates = separate_audio(separator, audio, segment, policy.overlap_seconds, Path(path).name)
        seconds = time.perf_counter() - started
        gain = pcm_safe_gain(estimates, subtype)
        if gain != 1.0:
            warn(f"{path}: the separated sources peak at {1 / gain * 0.99:.3g}, beyond what {subtype} holds; "
                 f"scaled by {gain:.3g} (all sources alike) instead of clipping. Pass --subtype FLOAT to keep them")
        for target, estimate in zip(files, estimates):
            save_audio(target, estimate * gain, rate, subtype)
        records.append({"input": str(path), "seconds_of_audio": round(audio.seconds, 3), "notes": list(audio.notes),
                        "segment_seconds": segment, "overlap_seconds": policy.overlap_seconds if segment else None,
                        "processing_seconds": round(seconds, 3), "gain": gain,
                        "real_time_factor": round(seconds / audio.seconds, 4), "outputs": [str(f) for f in files]})
        write_json(out / "separate_run.json", {**header, "complete": len(records) == len(paths), "files": records})
        report(f"{path}: {len(files)} sources in {seconds:.2f} s (RTF {seconds / audio.seconds:.3f}) -> {out}")
    return records


def load_sources(paths, rate: int, length: int) -> np.ndarray:
    """Ground-truth sources (n_src, length) at ``rate``; a length mismatch over 10 ms is an error."""
    sources = [load_audio(p, rate, max_channels=1, allow_silent=True).wav for p in paths]
    for path, wav in zip(paths, sources):
        if abs(len(wav) - length) > rate // 100:
            raise UserError(f"source {path} has {len(wav)} samples, the mixture {length}: pass the mixture's own sources")
    return np.stack([np.pad(w, (0, max(0, length - len(w))))[:length] for w in sources])


def forward_one(separator: StitchedSeparator, mix_path: Path, source_paths) -> tuple[LoadedAudio, ForwardResult]:
    model = separator.model
    rate = model.config.sample_rate
    mixture = load_audio(mix_path, rate)
    sources = load_sources(source_paths, rate, len(mixture.wav)) if source_paths else None
    if sources is not None and len(sources) != model.config.n_src:
        raise UserError(f"{len(sources)} ground-truth sources for a {model.config.n_src}-source model")
    return mixture, run_forward(model, separator, mixture.wav, sources)


def write_forward_run(run_dir: Path, result: ForwardResult, rate: int, metrics: dict, title: str) -> None:
    """Separated sources (in ground-truth order when known), the mixture, the PNG and the
    runbook's ``librimix_hailo_forward_metrics.json``."""
    score = result.score()
    order = list(score.permutation) if score else list(range(len(result.stitched)))
    for i, index in enumerate(order, 1):
        save_audio(run_dir / f"hailo_src{i}.wav", result.stitched[index], rate, "FLOAT")
    save_audio(run_dir / "mixture.wav", result.mixture, rate, "FLOAT")
    plot_separation(run_dir / "separation.png", rate, result.mixture, result.stitched[order], result.sources, title)
    write_json(run_dir / "librimix_hailo_forward_metrics.json", metrics)


def forward_run(separator: StitchedSeparator, mix_path: Path, source_paths, run_dir: Path, run_info: dict) -> dict:
    mixture, result = forward_one(separator, mix_path, source_paths)
    metrics = {"mixture": str(mix_path), "sources": [str(p) for p in source_paths or []], "notes": list(mixture.notes),
               **run_info, **forward_metrics(result)}
    write_forward_run(run_dir, result, separator.model.config.sample_rate, metrics, mix_path.name)
    return metrics


def forward_summary(metrics: dict) -> str:
    line = (f"parity max_abs vs reference {metrics['parity_max_abs_vs_reference']:.2e} "
            f"(bound {metrics['parity_bound']:.1e}: {'ok' if metrics['parity_ok'] else 'FAILED'})")
    if "si_snri_hailo_mean_db" not in metrics:
        return line + "; no ground-truth sources, parity only"
    return (line + f"; SI-SNR {metrics['si_snr_hailo_src1_vs_gt_s1_db']:.2f} / "
            f"{metrics['si_snr_hailo_src2_vs_gt_s2_db']:.2f} dB, SI-SNRi {metrics['si_snri_hailo_mean_db']:.2f} dB "
            f"(reference model {metrics['si_snri_reference_mean_db']:.2f} dB)")


EVALUATE_COLUMNS = ["mixture_ID", "num_samples", "si_snr_s1_db", "si_snr_s2_db", "si_snri_db", "mixture_si_snr_db",
                    "reference_si_snri_db", "parity_max_abs", "parity_ok"]


def evaluate_entries(separator: StitchedSeparator, entries, run_dir: Path, run_info: dict,
                     report: Report = print) -> dict:
    """Per-utterance CSV (written row by row) and ``evaluate_summary.json``."""
    rows = []
    with open(run_dir / "evaluate_per_utterance.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, EVALUATE_COLUMNS)
        writer.writeheader()
        for index, entry in enumerate(entries, 1):
            _, result = forward_one(separator, entry.mixture_path, entry.source_paths)
            score, ref_score = result.score("stitched"), result.score("reference")
            row = {"mixture_ID": entry.mixture_id, "num_samples": len(result.mixture),
                   "si_snr_s1_db": score.si_snr[0], "si_snr_s2_db": score.si_snr[-1], "si_snri_db": score.mean_si_snri,
                   "mixture_si_snr_db": float(np.mean(score.mixture_si_snr)),
                   "reference_si_snri_db": ref_score.mean_si_snri, "parity_max_abs": result.parity_max_abs,
                   "parity_ok": result.parity_ok}
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
            handle.flush()
            rows.append(row)
            report(f"[{index}/{len(entries)}] {entry.mixture_id}: SI-SNRi {row['si_snri_db']:.2f} dB, "
                   f"parity {row['parity_max_abs']:.1e}")

    def stats(values):
        return {"mean": statistics.fmean(values), "median": statistics.median(values)}

    summary = {**run_info, "n_mixtures": len(rows),
               "si_snr_db": stats([(r["si_snr_s1_db"] + r["si_snr_s2_db"]) / 2 for r in rows]),
               "si_snri_db": stats([r["si_snri_db"] for r in rows]),
               "reference_si_snri_db": stats([r["reference_si_snri_db"] for r in rows]),
               "parity_max_abs": max(r["parity_max_abs"] for r in rows),
               "parity_all_ok": all(r["parity_ok"] for r in rows)}
    write_json(run_dir / "evaluate_summary.json", summary)
    return summary


# The commands: plain values in, an exit status out (the CLI only parses and dispatches).

def open_separator(source: ModelSource, backend: BackendOptions, tile_w: int, layout: PlanOptions,
                   scratch: Path, report: Report = print) -> StitchedSeparator:
    """The stitched separator on ``backend`` (onnxruntime exports into ``scratch`` unless it was
    given an export folder)."""
    check_tile_width(tile_w)
    plan = layout.build(source.model, PlanPath.FULL_CHAIN)
    return StitchedSeparator(source.model, open_backend(backend, plan, source.to_json(), [tile_w], scratch, report),
                             tile_w, plan)


def _run_info(source: ModelSource, backend: BackendOptions, tile_w: int, layout: PlanOptions) -> dict:
    return {"backend": backend.name, "tile_w": tile_w, **layout.to_json(), **source.to_json()}


def separate_command(source: ModelSource, mixtures: list[str], out: Path, backend: BackendOptions, tile_w: int,
                     layout: PlanOptions, policy: SegmentPolicy, subtype: str, report: Report = print) -> int:
    separator = open_separator(source, backend, tile_w, layout, out / "onnx", report)
    separate_files(separator, mixtures, out, policy, subtype, _run_info(source, backend, tile_w, layout), report)
    return 0


def forward_command(source: ModelSource, mix: Path, s1: str | None, s2: str | None, backend: BackendOptions,
                    tile_w: int, layout: PlanOptions, runs_dir: Path, report: Report = print) -> int:
    """Runbook step 6; exit 1 when the stitched output breaks the contract."""
    given = [p for p in (s1, s2) if p]
    if len(given) == 1:
        raise UserError("pass both --s1 and --s2, or neither")
    source_paths = given or sources_beside(mix, source.model.config.n_src)
    run_dir = new_run_dir(runs_dir)
    separator = open_separator(source, backend, tile_w, layout, run_dir / "onnx", report)
    metrics = forward_run(separator, mix, source_paths, run_dir, _run_info(source, backend, tile_w, layout))
    report(forward_summary(metrics))
    report(f"run folder: {run_dir}")
    return 0 if metrics["parity_ok"] else 1


def missing_files(entries) -> list[Path]:
    return [p for e in entries for p in (e.mixture_path, *e.source_paths) if not p.is_file()]


def evaluate_command(source: ModelSource, metadata: Path, limit: int | None, backend: BackendOptions, tile_w: int,
                     layout: PlanOptions, runs_dir: Path, report: Report = print) -> int:
    """Every listed file is checked before the first mixture is separated; exit 1 when any
    mixture breaks the contract."""
    entries = read_metadata(metadata)[:limit]
    missing = missing_files(entries)
    if missing:
        raise UserError(f"{metadata} lists {len(missing)} file(s) that do not exist, the first {missing[0]}; "
                        "fix the paths or pass the CSV of the LibriMix tree they belong to")
    run_dir = new_run_dir(runs_dir)
    separator = open_separator(source, backend, tile_w, layout, run_dir / "onnx", report)
    run_info = {"metadata": str(metadata), **_run_info(source, backend, tile_w, layout)}
    summary = evaluate_entries(separator, entries, run_dir, run_info, report)
    report(f"{summary['n_mixtures']} mixtures: SI-SNRi mean {summary['si_snri_db']['mean']:.2f} dB, median "
           f"{summary['si_snri_db']['median']:.2f} dB; parity max_abs {summary['parity_max_abs']:.1e}; {run_dir}")
    return 0 if summary["parity_all_ok"] else 1


def demo_command(backend: BackendOptions, tile_w: int, runs_dir: Path, report: Report = print) -> int:
    """The main job on shipped defaults: the shipped real two-speaker mixture, the shipped demo
    model, the stitched path, parity and SI-SNRi."""
    from ..assets import DEMO_MIXTURE, DEMO_SOURCES
    from ..model.source import trained_model

    report(f"demo: separating {DEMO_MIXTURE.name} (two real speakers) with the shipped demo model, "
           f"backend {backend.name}, tile_w {tile_w}")
    s1, s2 = map(str, DEMO_SOURCES)
    return forward_command(trained_model(None), DEMO_MIXTURE, s1, s2, backend, tile_w, PlanOptions(), runs_dir,
                           report)
