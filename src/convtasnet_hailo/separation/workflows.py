"""The audio commands' work: separating files, the forward example, evaluating a LibriMix set.

Every function takes plain values (no argparse); the CLI only parses and calls these.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.io import LoadedAudio, load_audio, save_audio
from ..errors import UserError
from ..runs.plot import plot_separation
from ..runs.run_folder import write_json
from ..tolerances import ATOL
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


def separate_files(separator: StitchedSeparator, paths: list[str], out: Path, policy: SegmentPolicy, subtype: str,
                   run_info: dict, report: Report = print) -> list[dict]:
    """Separates every file into ``out/<stem>_s<i>.wav`` and writes ``separate_run.json``.
    All inputs are read and checked before any separation starts."""
    rate = separator.model.config.sample_rate
    mixtures = [load_audio(path, rate) for path in paths]
    segments = [policy.segment_seconds(audio.seconds) for audio in mixtures]
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path, audio, segment in zip(paths, mixtures, segments):
        for note in audio.notes:
            report(f"{path}: {note}")
        started = time.perf_counter()
        estimates = separate_audio(separator, audio, segment, policy.overlap_seconds, Path(path).name)
        seconds = time.perf_counter() - started
        outputs = []
        for i, estimate in enumerate(estimates, 1):
            target = out / f"{Path(path).stem}_s{i}.wav"
            save_audio(target, estimate, rate, subtype)
            outputs.append(str(target))
        records.append({"input": str(path), "seconds_of_audio": round(audio.seconds, 3), "notes": list(audio.notes),
                        "segment_seconds": segment, "overlap_seconds": policy.overlap_seconds if segment else None,
                        "processing_seconds": round(seconds, 3),
                        "real_time_factor": round(seconds / audio.seconds, 4), "outputs": outputs})
        report(f"{path}: {len(outputs)} sources in {seconds:.2f} s (RTF {seconds / audio.seconds:.3f}) -> {out}")
    write_json(out / "separate_run.json", {**run_info, "sample_rate": rate, "subtype": subtype, "files": records})
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
    line = f"parity max_abs vs reference {metrics['parity_max_abs_vs_reference']:.2e} (tol {ATOL:g})"
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
                   "parity_ok": result.parity_max_abs <= ATOL}
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
