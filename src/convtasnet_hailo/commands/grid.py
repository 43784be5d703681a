"""`compile-grid` (alias `grid`): every case of a grid profile (tile widths x channel blocks x
model-script variants over one path's stages) compiled into a run folder, and reported
(``compile.orchestrate.run_grid``): which configuration passes every stage."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..compile.orchestrate import CompileOptions, GridOutcome
from ..compile.profile import GridProfile
from ..compile.runner import ExecMode
from ..model.source import ModelSource

log = logging.getLogger(__name__)

#: The command's name (``grid`` is its old name, kept as an alias).
NAME = "compile-grid"


@dataclasses.dataclass(frozen=True)
class Request:
    """Every case of ``profile`` for ``source``, in a new run folder inside ``out``, or, with
    ``resume`` (``--resume``: "latest" or a run folder), in the folder of an interrupted grid."""

    source: ModelSource
    profile: GridProfile
    out: Path
    options: CompileOptions = CompileOptions()
    resume: str | None = None


@dataclasses.dataclass(frozen=True)
class GridResult:
    outcome: GridOutcome
    mode: ExecMode
    exit_status: int = 0

    def lines(self) -> list[str]:
        outcome, covering = self.outcome, self.outcome.covering
        return [
            f"{outcome.n_cases} case(s); summary {outcome.summary}; report "
            f"{outcome.run_dir / 'grid_report.tsv'}; "
            + (
                f"covering: tile_w {covering['tile_w']} block_chan {covering['block_chan']}"
                if covering
                else "no configuration passes every stage yet"
            )
        ]


def run(request: Request) -> GridResult:
    from ..compile.orchestrate import (
        GRID_MARKER,
        GRID_SUMMARY,
        GridRequest,
        calibration_audio,
        check_resumable,
        exec_mode,
        run_grid,
    )
    from ..guard import check_run_files
    from ..runs.run_folder import new_run_dir, resume_folder
    from ..tasks.options import open_executor

    source, profile, options = request.source, request.profile, request.options
    mode = exec_mode(options)
    resume = resume_folder(request.out, request.resume, GRID_MARKER, NAME)
    if resume is not None:
        check_resumable(resume, profile)
    audio = calibration_audio(options.audio, source.model.config.sample_rate, source.model.config.n_src)
    check_run_files(
        source.given() + [("the --calib input", p) for p in options.audio],
        [resume / GRID_MARKER, resume / GRID_SUMMARY[profile.path]] if resume else [],
    )
    run_dir = resume or new_run_dir(request.out)
    log.info(
        f"grid {profile.path} --profile {profile.name} ({mode.value}, executor {options.executor.name}), "
        f"{source.description}; run folder {run_dir}"
    )
    grid = GridRequest(source, profile, request.out, options, resume)
    with open_executor(options.executor) as cases:
        outcome = run_grid(grid, run_dir, audio, mode, cases)
    return GridResult(outcome, mode)


def write(result: GridResult) -> None:
    """Nothing more: the summary rows, the report and the covering manifest are written as the grid runs."""
