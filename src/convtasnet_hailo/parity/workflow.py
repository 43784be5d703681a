"""The `parity` command's work: cases from the requested lengths, the backend, the run folder,
the summary line and the exit status. Plain values in (no argparse)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..runtime.backend_setup import BackendOptions, open_emulation
from ..runtime import RunSpec, open_run
from ..errors import UserError
from ..guard import check_run_files
from ..resources import refuse_unless_fits
from ..plan.builder import PlanOptions, PlanPath, build_plan
from ..model.config import ConvTasNetConfig
from ..model.source import ModelSource
from ..runs.run_folder import new_run_dir
from .runner import (
    DEFAULT_TILE_WIDTHS, SUMMARY_FILES, ParityCase, ParityRun, ReferencePrecision, default_cases, run_parity,
    samples_for_frames,
)


def parity_cases(path: PlanPath, config: ConvTasNetConfig, tile_widths: Sequence[int] | None,
                 lengths: Sequence[int] | None, seconds: Sequence[float] | None) -> list[ParityCase]:
    """``lengths`` are samples for full-chain and latent frames for decoder/masker; without
    lengths, every tile width gets the edge lengths of :func:`default_cases`."""
    tile_widths = list(tile_widths or DEFAULT_TILE_WIDTHS)
    if lengths and seconds:
        raise UserError("--length and --seconds both given: pass one of them")
    if not lengths and not seconds:
        return default_cases(path, config, tile_widths)
    if seconds:
        samples = [round(s * config.sample_rate) for s in seconds]
    elif path is PlanPath.FULL_CHAIN:
        samples = list(lengths)
    else:
        samples = [samples_for_frames(config, frames) for frames in lengths]
    for wav_t in samples:
        if wav_t < config.kernel_size:
            raise UserError(f"length of {wav_t} samples is shorter than one encoder window "
                            f"({config.kernel_size} samples): pass a longer --length/--seconds")
    refuse_unless_fits(2 * config.forward_bytes(max(samples)), f"parity at {max(samples)} samples "
                       "(the reference model and the stitched path side by side)", "pass a shorter --length/--seconds")
    return [ParityCase(path, tile_w, wav_t) for tile_w in tile_widths for wav_t in samples]


def exported_with_internal_tensors(export_dir: Path | None) -> bool:
    """Whether an export folder (or its tile<W>/ subfolders) holds a plan with internal tensors exposed."""
    if export_dir is None:
        return False
    from ..export.manifest import read_manifest

    folders = [export_dir] if (export_dir / "manifest.json").is_file() else sorted(export_dir.glob("tile*"))
    return any(read_manifest(f).plan.expose_internal for f in folders if (f / "manifest.json").is_file())


@dataclasses.dataclass(frozen=True)
class ParityRequest:
    path: PlanPath
    backend: BackendOptions
    tile_widths: Sequence[int] | None = None
    lengths: Sequence[int] | None = None
    seconds: Sequence[float] | None = None
    layout: PlanOptions = PlanOptions()
    runs_dir: Path = Path("module_runs")
    seed: int = 0
    reference: ReferencePrecision = ReferencePrecision.FLOAT32


def run_parity_command(source: ModelSource, request: ParityRequest, report: Callable[[str], None] = print) -> int:
    """Runs every case into a new run folder; 0 when all pass, 1 when any fails."""
    cases = parity_cases(request.path, source.model.config, request.tile_widths, request.lengths, request.seconds)
    # Fused stages output their internal tensors too, so every runbook name is compared, where the
    # backend builds its own artifacts; given exports and HEFs fix the plan they were made from.
    expose = request.backend.runs_any_plan or exported_with_internal_tensors(request.backend.export_dir)
    plan = build_plan(source.model, request.layout, request.path, expose_internal=expose)
    check_run_files(source.given() + request.backend.given(), [])
    out_dir = new_run_dir(request.runs_dir)
    report(f"parity {request.path.value}: {len(cases)} case(s), backend {request.backend.name}, "
           f"{len(plan.stages)} stages, {source.description}")
    report(f"run folder: {out_dir}")
    spec = RunSpec(source=source, options=request.layout, backend=request.backend, tile_w=cases[0].tile_w,
                   path=request.path, expose_internal=expose, scratch=out_dir / "onnx")
    emulation = open_emulation(request.backend)
    if emulation is not None:
        report(f"expected values: the float model and the device-arithmetic emulation of {request.backend.noise_dir}")
    with open_run(spec, plan=plan) as run:
        parity = ParityRun(plan, run.backend, source, out_dir, request.reference, emulation)
        outcomes = run_parity(parity, cases, seed=request.seed, report=report)
    failed = [o.run_tag for o in outcomes if not o.success]
    worst = max((o.record["max_abs"] for o in outcomes), default=float("nan"))
    if outcomes[0].record["tolerance"] == "normwise":
        margin = min(o.record["min_margin"] for o in outcomes)
        rule = f"tol {outcomes[0].record['tol']:g} x max(1, peak); smallest margin {margin:.1f}x"
    else:
        rule = outcomes[0].record["contract"]
    report(f"{len(outcomes) - len(failed)}/{len(outcomes)} case(s) all_close ({rule}); largest stage max_abs "
           f"{worst:.2e}; summary {out_dir / SUMMARY_FILES[request.path]}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
