"""What `compile` and `compile-grid` do: from a model (or an export) to compile cases, run and reported
(the commands themselves are ``commands.compile`` and ``commands.grid``)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np

from ..dfc.driver import SDK_MISSING, SDK_MODULE, check_target, import_sdk, sdk_version
from ..dfc.pending import SUMMARY_COLUMNS
from ..dfc.worker import probe_interpreter
from ..errors import UserError
from ..export.exporter import export_plan
from ..files import write_text_atomically
from ..model.source import ModelSource
from ..plan import PlanOptions, PlanPath, build_plan
from ..quantization.calibration import make_calibration
from ..records import read_json
from ..runs.run_folder import TsvWriter
from ..tasks.base import CaseExecutor
from ..tasks.options import ExecutorOptions
from .profile import GridCase, GridProfile, run_tag, select_stages, structure_key
from .report import write_report
from .runner import (
    ExecMode,
    Execution,
    ExportCases,
    PreparedCase,
    done_run_tags,
    execute,
    prepare_cases,
    write_scripts,
)

log = logging.getLogger(__name__)

GRID_SUMMARY = {"decoder": "allocator_mapping_fixes_summary.tsv", "masker": "masker_allocator_fixes_summary.tsv"}


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """How `compile` and `grid` compile their cases: the target, the calibration audio (``audio``,
    none: the shipped demo mixture) and tiles per input, and where the Dataflow Compiler runs
    (``dry_run``: nowhere; ``hailo_python``: a worker in that interpreter; the executor's
    threads or Ray nodes), ``timeout_s`` per case."""

    hw_arch: str = "hailo8"
    audio: tuple[str, ...] = ()
    calib_count: int = 64
    dry_run: bool = False
    hailo_python: str | None = None
    executor: ExecutorOptions = ExecutorOptions()
    timeout_s: float | None = None


@dataclasses.dataclass(frozen=True)
class GridRequest:
    """``grid``: every case of ``profile`` for ``source``, in a new run folder under ``runs_dir`` or
    in ``resume`` (the folder of an interrupted grid)."""

    source: ModelSource
    profile: GridProfile
    runs_dir: Path
    options: CompileOptions = CompileOptions()
    resume: Path | None = None


def exec_mode(options: CompileOptions) -> ExecMode:
    """Decided before any work starts: a missing SDK, or one that does not target ``hw_arch``, is
    reported at once (on a Ray cluster the nodes with the ``hailo_sdk`` resource have it, not
    this machine)."""
    mode = _exec_mode(options.dry_run, options.hailo_python, options.executor)
    if mode is ExecMode.IN_PROCESS and options.executor.name != "ray":  # on Ray the SDK is on the nodes
        check_target(import_sdk(), options.hw_arch)
    return mode


def current_sdk_version(options: CompileOptions, mode: ExecMode) -> str | None:
    """The Dataflow Compiler version the jobs will run with, which a reused job must have been made
    by: None in a dry run and on Ray (the nodes' SDK is not known here; not compared then)."""
    if mode is ExecMode.DRY_RUN or options.executor.name == "ray":
        return None
    if options.hailo_python:
        return probe_interpreter(options.hailo_python)
    return sdk_version(import_sdk())


def _execution(
    options: CompileOptions, mode: ExecMode, root: Path, summary: TsvWriter, executor: CaseExecutor
) -> Execution:
    return Execution(mode, root, summary, options.hw_arch, executor, options.hailo_python, options.timeout_s)


def _exec_mode(dry_run: bool, hailo_python: str | None, executor: ExecutorOptions) -> ExecMode:
    if dry_run:
        return ExecMode.DRY_RUN
    if executor.name == "ray":
        return ExecMode.WORKER if hailo_python else ExecMode.IN_PROCESS
    jobs = executor.jobs
    if hailo_python:
        if not Path(hailo_python).exists():
            raise UserError(f"--hailo-python {hailo_python} does not exist; pass the SDK venv's bin/python")
        probe_interpreter(hailo_python)  # once: a wrong interpreter is one error, not one per stage
        return ExecMode.WORKER
    if importlib.util.find_spec(SDK_MODULE) is None:
        raise UserError(SDK_MISSING)
    import_sdk()  # once, here: an install that fails at import is one error, not one per stage
    return ExecMode.WORKER if jobs > 1 else ExecMode.IN_PROCESS  # the SDK is not known to be thread-safe


def calibration_audio(paths: tuple[str, ...] | list[str] | None, rate: int, n_src: int) -> list[np.ndarray]:
    """The given audio (files, folders of them or LibriMix metadata CSVs, as `noise --calib` takes)
    at the model's rate, or the shipped real-speech demo mixture."""
    from ..assets import DEMO_MIXTURE
    from ..quantization.datasets import load_mixtures, recordings

    if not paths:
        if rate != 8000:
            raise UserError(f"the shipped calibration audio is 8 kHz and the model {rate} Hz: pass --calib AUDIO...")
        paths = [str(DEMO_MIXTURE)]
    return load_mixtures(recordings(list(paths), n_src, what="--calib"), rate, "--calib")


def _stage_map(stages, selected) -> dict[str, str]:
    """Every stage of the path -> the compiled stage that stands for it (itself, or the
    structurally identical representative of a 'distinct' grid)."""
    representative = {structure_key(s): s.name for s in selected}
    return {s.name: representative.get(structure_key(s), "") for s in stages}


def grid_plan(model, path: str, block_chan: int | None, fuse: bool = True):
    """The stages a grid compiles: ``masker`` = the masker path's; ``decoder`` = the rest of the
    full chain (the filterbank side: encoder, mask multiply, decoder projection), so the two
    grids together cover every stage of the runtime plan."""
    full_chain = build_plan(model, PlanOptions(block_chan=block_chan, fuse=fuse), PlanPath.FULL_CHAIN)
    masker = {s.name for s in build_plan(model, PlanOptions(block_chan=block_chan, fuse=fuse), PlanPath.MASKER).stages}
    keep = (lambda name: name in masker) if path == "masker" else (lambda name: name not in masker)
    return full_chain, [s for s in full_chain.stages if keep(s.name)]


@dataclasses.dataclass(frozen=True)
class _GridRun:
    """What every configuration of one grid shares: its request, run folder, calibration audio and
    model scripts."""

    request: GridRequest
    run_dir: Path
    audio: list[np.ndarray]
    scripts: dict[str, Path]


@dataclasses.dataclass(frozen=True)
class GridOutcome:
    """A grid run: its cases, the summary TSV (one row per case), the configuration that passes
    every stage (``compile.report.covering_configuration``; None when none does yet)."""

    run_dir: Path
    n_cases: int
    summary: Path
    covering: dict | None


def write_case_list(
    run_dir: Path, profile: GridProfile, hw_arch: str, cases: list[str] = (), stage_maps: dict | None = None
) -> None:
    """``cases.json``: written first (the profile, so that ``--resume`` knows the folder as a grid's
    and which), and again with the case list once every configuration is prepared."""
    write_text_atomically(
        run_dir / GRID_MARKER,
        json.dumps(
            {
                "profile": profile.name,
                "path": profile.path,
                "hw_arch": hw_arch,
                "cases": list(cases),
                "stage_maps": stage_maps or {},
            },
            indent=1,
        ),
    )


def run_grid(
    request: GridRequest, run_dir: Path, audio: list[np.ndarray], mode: ExecMode, executor: CaseExecutor
) -> GridOutcome:
    """Every configuration's cases prepared (export, calibration, jobs), run, and reported."""
    profile, hw_arch = request.profile, request.options.hw_arch
    summary_path = run_dir / GRID_SUMMARY[profile.path]
    skip = done_run_tags(summary_path)
    if not (run_dir / GRID_MARKER).is_file():
        write_case_list(run_dir, profile, hw_arch)
    summary = TsvWriter(summary_path, SUMMARY_COLUMNS)
    grid = _GridRun(request, run_dir, audio, write_scripts(profile.variants, run_dir / "scripts"))
    prepared, stage_maps = [], {}
    for tile_w in profile.tile_widths:
        for block_chan in profile.block_chans:
            cases, stage_maps[(tile_w, block_chan)] = _grid_configuration(grid, tile_w, block_chan)
            prepared += cases
    write_case_list(
        run_dir,
        profile,
        hw_arch,
        [p.job.run_tag for p in prepared],
        {f"t{w}_b{c}": m for (w, c), m in stage_maps.items()},
    )
    execute(prepared, _execution(request.options, mode, run_dir, summary, executor), skip)
    from ..runs.run_folder import read_tsv

    rows = read_tsv(summary_path)
    return GridOutcome(run_dir, len(prepared), summary_path, write_report(run_dir, rows, stage_maps)["covering"])


def _grid_configuration(grid: _GridRun, tile_w: int, block_chan: int) -> tuple[list[PreparedCase], dict[str, str]]:
    """One tile width and channel block of a grid: its export, calibration and prepared cases,
    and its stage map."""
    profile, run_dir, source = grid.request.profile, grid.run_dir, grid.request.source
    tag = f"t{tile_w}_b{block_chan}"
    full_chain, path_stages = grid_plan(source.model, profile.path, block_chan or None)
    export = export_plan(full_chain, tile_w, run_dir / "export" / tag, source.to_json())
    selected = select_stages(path_stages, profile)
    calib = make_calibration(
        full_chain,
        tile_w,
        grid.audio,
        run_dir / "calib" / tag,
        grid.request.options.calib_count,
        tensors={p.name for s in selected for p in s.inputs},
    )
    cases = [
        GridCase(run_tag(s.name, tile_w, block_chan, v.name), profile.path, s.name, tile_w, block_chan, v.name)
        for s in selected
        for v in profile.variants
    ]
    prepared = prepare_cases(
        cases,
        ExportCases(
            export.manifest,
            run_dir / "export" / tag,
            calib,
            grid.scripts,
            grid.request.options.hw_arch,
            run_dir,
            run_dir / "cases",
        ),
    )
    log.info(
        f"{tag}: {len(path_stages)} stages on the {profile.path} side, {len(selected)} selected, {len(cases)} case(s)"
    )
    return prepared, _stage_map(path_stages, selected)


def model_for_export(export_dir: Path, override: str | None):
    """The model an export was made from, with its weights: --model (hash-checked), the recorded
    checkpoint, or the recorded random seed and config."""
    from ..runtime.sources import ModelChoice, resolve

    return resolve(ModelChoice(model=override, export_dir=export_dir, weights=True))


#: The file every grid run writes first (``write_case_list``): what marks a folder as a grid's for ``--resume``.
GRID_MARKER = "cases.json"


def check_resumable(run_dir: Path, profile: GridProfile) -> None:
    """A folder (``runs.run_folder.resume_folder`` found its ``cases.json``) an interrupted grid of
    the same path and profile wrote."""
    recorded = read_json(run_dir / GRID_MARKER, "grid case list", "start a new grid")
    if not isinstance(recorded, dict):
        raise UserError(
            f"--resume {run_dir}: cases.json holds a JSON {type(recorded).__name__}, not a grid's case "
            "list; start a new grid"
        )
    if (recorded.get("path"), recorded.get("profile")) != (profile.path, profile.name):
        raise UserError(
            f"--resume {run_dir} holds grid {recorded.get('path')} --profile {recorded.get('profile')}, "
            f"not {profile.path} --profile {profile.name}; pass the matching path and profile"
        )
