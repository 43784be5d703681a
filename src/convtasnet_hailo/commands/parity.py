"""`parity`: the stitched path against the reference model, stage by stage, over cases of lengths
and tile widths, into a new run folder (each case's JSON and the summary TSV, written as each case
finishes). Exit 1 when any case fails."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from ..model.source import ModelSource
from ..parity.runner import ReferencePrecision
from ..plan.options import PlanOptions, PlanPath
from ..runtime.backend_setup import BackendOptions

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    """What `parity` is asked: the model, which path, the backend, the tile widths and lengths
    (samples for full-chain, latent frames for decoder/masker; or seconds), the plan layout, the
    folder each run makes its folder in, the probe seed and the reference's precision."""

    source: ModelSource
    path: PlanPath
    backend: BackendOptions = BackendOptions()
    tile_widths: Sequence[int] | None = None
    lengths: Sequence[int] | None = None
    seconds: Sequence[float] | None = None
    layout: PlanOptions = PlanOptions()
    runs_dir: Path = Path("module_runs")
    seed: int = 0
    reference: ReferencePrecision = ReferencePrecision.FLOAT32


@dataclasses.dataclass(frozen=True)
class ParityResult:
    """The verdict over every case: how many passed, the failed cases' tags, the rule they were
    judged by, the largest stage max_abs, and where the summary is."""

    cases: int
    failed: tuple[str, ...]
    rule: str
    worst_max_abs: float
    run_folder: Path
    summary: Path

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0

    def lines(self) -> list[str]:
        return [
            f"{self.cases - len(self.failed)}/{self.cases} case(s) all_close ({self.rule}); largest stage max_abs "
            f"{self.worst_max_abs:.2e}; summary {self.summary}"
        ]


def run(request: Request) -> ParityResult:
    """Runs every case into a new run folder (JSONs and the summary TSV written as cases finish)."""
    from ..guard import check_run_files
    from ..parity.cases import exported_with_internal_tensors, parity_cases
    from ..parity.runner import SUMMARY_FILES, ParityRun, run_parity
    from ..plan import build_plan
    from ..runs.run_folder import new_run_dir
    from ..runtime import RunSpec, open_run
    from ..runtime.backend_setup import open_emulation

    source = request.source
    cases = parity_cases(request.path, source.model.config, request.tile_widths, request.lengths, request.seconds)
    # Fused stages output their internal tensors too, so every runbook name is compared, where the
    # backend builds its own artifacts; given exports and HEFs fix the plan they were made from.
    expose = request.backend.runs_any_plan or exported_with_internal_tensors(request.backend.export_dir)
    plan = build_plan(source.model, request.layout, request.path, expose_internal=expose)
    check_run_files(source.given() + request.backend.given(), [])
    out_dir = new_run_dir(request.runs_dir)
    spec = RunSpec(
        source=source,
        options=request.layout,
        backend=request.backend,
        tile_w=cases[0].tile_w,
        path=request.path,
        expose_internal=expose,
        scratch=out_dir / "onnx",
    )
    emulation = open_emulation(request.backend)
    with open_run(spec, plan=plan) as opened:
        # a backend that cannot open or run this plan is refused before any progress line (one-line errors)
        opened.backend.prepare(plan, cases[0].tile_w)
        _announce(request, len(cases), len(plan.stages), out_dir, emulation is not None)
        outcomes = run_parity(
            ParityRun(plan, opened.backend, source, out_dir, request.reference, emulation), cases, seed=request.seed
        )
    result = ParityResult(
        len(outcomes),
        tuple(o.run_tag for o in outcomes if not o.success),
        _rule(outcomes),
        max((o.record["max_abs"] for o in outcomes), default=float("nan")),
        out_dir,
        out_dir / SUMMARY_FILES[request.path],
    )
    if result.failed:
        log.warning(f"FAILED: {', '.join(result.failed)}")
    return result


def _announce(request: Request, cases: int, stages: int, out_dir: Path, emulated: bool) -> None:
    log.info(
        f"parity {request.path.value}: {cases} case(s), backend {request.backend.name}, "
        f"{stages} stages, {request.source.description}"
    )
    log.info(f"run folder: {out_dir}")
    if emulated:
        log.info(f"expected values: the float model and the device-arithmetic emulation of {request.backend.noise_dir}")


def _rule(outcomes) -> str:
    """The rule the cases were judged by, as the summary states it."""
    first = outcomes[0].record
    if first["tolerance"] == "normwise":
        margin = min(o.record["min_margin"] for o in outcomes)
        return f"tol {first['tol']:g} x max(1, peak); smallest margin {margin:.1f}x"
    if first["tolerance"] == "sqnr":
        lowest = min(outcomes, key=lambda o: _or_inf(o.record["deciding_sqnr_db"]))
        scores = [o.record.get("final_output_si_snr_vs_reference_db") for o in outcomes]
        scores = [s for s in scores if s is not None]
        return f"{first['contract']}; lowest SQNR {lowest.record['deciding_sqnr_db']:.1f} dB " + (
            f"({lowest.record['deciding_sqnr_stage']}, {lowest.run_tag})"
            + (f"; output SI-SNR vs float {min(scores):.1f} dB at worst" if scores else "")
        )
    return first["contract"]


def _or_inf(value: float | None) -> float:
    return float("inf") if value is None else value


def write(result: ParityResult) -> None:
    """Nothing more: every case's JSON and the summary TSV were written as the cases finished."""
