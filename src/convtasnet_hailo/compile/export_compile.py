"""What `compile` does to one export: its stages' jobs prepared (the stage ONNX, the model script
with the precision lines of `noise`, the calibration arrays) and written to ``<hef_dir>/jobs``
(``dfc.pending``), then run, each finished one recorded in ``compile_manifest.json`` at once.

Where things go: the HARs, HEFs, logs, jobs and manifest in ``hef_dir`` (default
``<export>/hailo/<hw_arch>``), the calibration arrays in ``calib_dir`` (default ``<export>.calib``
beside the export: never inside it, the folder a user copies). A job whose product was made from
the same inputs by the same SDK is reused, with or without ``resume``; ``resume`` runs the jobs
recorded in ``hef_dir`` as they were prepared (no model, no audio read again)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from ..dfc.manifest import PENDING, CompileManifest, PackArtifacts, StageArtifacts, record_rows
from ..dfc.model_script import DEFAULT_VARIANT, ScriptVariant
from ..dfc.pending import SUMMARY_COLUMNS, PendingJob, PendingJobs, read_pending, write_pending
from ..errors import UserError
from ..export.manifest import Manifest, read_manifest
from ..guard import check_run_files
from ..model.source import ModelSource
from ..plan import PlanPath, StagePlan, build_plan, refuse_float_only
from ..plan.packing import Packing, pack_stages, resolve_mode
from ..quantization.calibration import make_calibration
from ..records import read_json
from ..runs.run_folder import TsvWriter
from ..tasks.base import CaseExecutor
from .orchestrate import CompileOptions, _execution, calibration_audio, model_for_export
from .profile import GridCase, run_tag
from .runner import ExecMode, ExportCases, PreparedCase, execute, prepare_cases, prepare_packs
from .runner import write_scripts as write_variant_scripts

log = logging.getLogger(__name__)

SUMMARY_FILE = "compile_summary.tsv"
#: How far a `noise` report's model_scripts folder is bound to a compile (``noise_report.json`` beside it).
NOISE_REPORT = "noise_report.json"


def default_calib_dir(export_dir: Path) -> Path:
    """``<export>.calib``: the calibration arrays' folder beside the export, never inside it."""
    absolute = Path(os.path.abspath(export_dir))
    return absolute.with_name(absolute.name + ".calib")


@dataclasses.dataclass(frozen=True)
class CompileRequest:
    """``compile``: every stage of the export in ``export_dir`` with the script ``variant``, the
    model it came from (``model_override``: --model), ``precision_dir``'s 16-bit layers added;
    calibration arrays in ``calib_dir`` (None: ``<export>.calib``), HARs, HEFs, jobs and records
    in ``hef_dir`` (None: ``<export>/hailo/<hw_arch>``); ``resume``: run the jobs recorded in
    ``hef_dir`` as prepared (settings given here must agree with the recorded ones)."""

    export_dir: Path
    variant: ScriptVariant = DEFAULT_VARIANT
    options: CompileOptions = CompileOptions()
    model_override: str | None = None
    precision_dir: Path | None = None
    calib_dir: Path | None = None
    hef_dir: Path | None = None
    resume: bool = False

    @property
    def out_dir(self) -> Path:
        return (
            Path(self.hef_dir) if self.hef_dir is not None else Path(self.export_dir) / "hailo" / self.options.hw_arch
        )

    @property
    def calib_folder(self) -> Path:
        return Path(os.path.abspath(self.calib_dir)) if self.calib_dir else default_calib_dir(self.export_dir)


@dataclasses.dataclass(frozen=True)
class CompileOutcome:
    """A compile: one summary row per stage (``rows``) and per joined pack (``pack_rows``), how many
    packs were to be joined, the output folder, and the packs that compiled multi-context."""

    rows: list[dict]
    pack_rows: list[dict]
    joined: int
    out_dir: Path
    multi_context_packs: list[str]


def compile_export(request: CompileRequest) -> tuple[CompileOutcome, ExecMode]:
    """The whole compile of ``request`` and how it ran: where the DFC runs decided first (a missing
    SDK, without ``dry_run`` or ``hailo_python``, is a UserError before any work), the executor
    opened for it, the jobs prepared (or, with ``resume``, read) and run."""
    from ..tasks.options import open_executor
    from .orchestrate import exec_mode

    mode = exec_mode(request.options)
    if not Path(request.export_dir).is_dir():
        raise UserError(
            f"--export-dir {request.export_dir} is not a folder; pass one written by `convtasnet-hailo export`"
        )
    with open_executor(request.options.executor) as cases:
        outcome = run_compile(request, mode, cases)
    warn_packs(outcome)
    return outcome, mode


def run_compile(request: CompileRequest, mode: ExecMode, executor: CaseExecutor) -> CompileOutcome:
    """The export's jobs prepared (or, with ``resume``, the recorded ones read) and run: stages,
    then each pack whose stages all made their HARs; every finished job recorded at once."""
    out_dir = request.out_dir
    if request.resume:
        pending = read_pending(out_dir)
        check_resumable(request, pending)
        log.info(f"resume: {len(pending.stages)} stage job(s) and {len(pending.packs)} pack job(s) in {out_dir}")
    else:
        pending = prepare(request)
    return run_pending_jobs(pending, request.options, mode, executor)


def prepare(request: CompileRequest) -> PendingJobs:
    """Checks the export against its model, makes the calibration arrays, writes the model scripts,
    the jobs (``dfc.pending``) and a manifest whose every entry is pending."""
    options, variant = request.options, request.variant
    manifest, source, plan = _staged_export(request)
    out_dir = Path(os.path.abspath(request.out_dir))
    names = [s.name for s in plan.stages]
    lines = precision_lines(request.precision_dir, names, source, manifest.tile_w, options.audio)
    calib = _compile_calibration(request, manifest, source, plan, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scripts = write_variant_scripts((variant,), out_dir / "scripts")
    tile_w, block_chan = manifest.tile_w, manifest.plan.options.block_chan or 0
    path = manifest.plan.path.value
    cases = [
        GridCase(run_tag(s, tile_w, block_chan, variant.name), path, s, tile_w, block_chan, variant.name) for s in names
    ]
    packing = manifest.packing or pack_stages(names, networks_per_group=1)
    resolve_mode(packing.mode.value, max(len(g.networks) for g in packing.network_groups), options.hw_arch)
    joined = [(g.name, g.networks) for g in packing.network_groups if len(g.networks) > 1]
    export_dir = Path(os.path.abspath(request.export_dir))
    root = Path(os.path.commonpath([export_dir, request.calib_folder, out_dir]))
    har_only = frozenset(s for _, stages in joined for s in stages)
    export = ExportCases(manifest, export_dir, calib, scripts, options.hw_arch, root, out_dir, har_only, lines)
    prepared = prepare_cases(cases, export)
    packs = prepare_packs(joined, prepared, options.hw_arch, tile_w, block_chan, variant.name)
    _pending_manifest(out_dir, options.hw_arch, manifest, variant.name, names, packing)
    listed = lambda items: [PendingJob(p.job, dataclasses.asdict(p.case)) for p in items]  # noqa: E731
    write_pending(out_dir / "jobs", root, options.hw_arch, (listed(prepared), listed(packs)), request_record(request))
    return read_pending(out_dir)


def run_pending_jobs(
    pending: PendingJobs, options: CompileOptions, mode: ExecMode, executor: CaseExecutor
) -> CompileOutcome:
    """The jobs of ``pending`` run through ``executor`` (finished ones reused), the summary TSV
    written afresh (one row per job of this run) and each finished job recorded in the manifest."""
    from .orchestrate import current_sdk_version

    out_dir = pending.out_dir
    summary_path = out_dir / SUMMARY_FILE
    summary_path.unlink(missing_ok=True)
    summary = TsvWriter(summary_path, SUMMARY_COLUMNS)
    run = dataclasses.replace(
        _execution(options, mode, pending.root, summary, executor),
        sdk_version=current_sdk_version(options, mode),
        jobs_dir=pending.jobs_dir,
        on_row=None if mode is ExecMode.DRY_RUN else (lambda row: record_rows(out_dir, [row])),
    )
    typed = lambda item: PreparedCase(GridCase(**item.case), item.job)  # noqa: E731
    rows = execute([typed(i) for i in pending.stages], run)
    ready = {r["stage"] for r in rows if r["status"] in ("compiled", "reused", "dry-run")}
    packs = [typed(i) for i in pending.packs if set(i.job.stages) <= ready]
    if packs:
        log.info(f"joining {len(packs)} of {len(pending.packs)} pack(s) into one HEF each")
    pack_rows = execute(packs, run) if packs else []
    multi = sorted(r["stage"] for r in pack_rows if r.get("multi_context"))
    return CompileOutcome(rows, pack_rows, len(pending.packs), out_dir, multi)


def warn_packs(outcome: CompileOutcome) -> None:
    """Packs that did not fit one context, or compiled multi-context: what to change."""
    unmapped = [
        r["stage"]
        for r in outcome.pack_rows
        if r["status"] == "failed" and "Allocator" in (r.get("exception_type") or "")
    ]
    if unmapped:  # the joint script asks for one context (dfc.model_script.joint_script)
        log.warning(
            f"compile: pack {unmapped[0]} did not fit one context ({len(unmapped)} of {outcome.joined} packs), "
            "which its joint model script asks for (context_switch_param(mode=disabled)) since activated_packs "
            "runs only single-context packs; re-export with a smaller --networks-per-group and compile again"
        )
    multi = outcome.multi_context_packs
    if multi:  # HailoRT runs a network of a multi-context group only with all the others
        log.warning(
            f"compile: pack {multi[0]} compiled multi-context ({len(multi)} of {outcome.joined} packs), which "
            "execution mode activated_packs cannot run one network at a time (HailoRT "
            "inference_pipeline.cpp); re-export with --networks-per-group 1, or smaller packs, and compile "
            "again"
        )


def pending_command(out_dir: Path) -> str:
    """The one command that runs every pending job of ``out_dir`` where the SDK is (its Python
    needs only this package and numpy), skipping finished ones."""
    return f"python -m convtasnet_hailo.dfc.worker --pending {out_dir}"


def _staged_export(request: CompileRequest) -> tuple[Manifest, ModelSource, StagePlan]:
    """The export's manifest, the model it came from and its plan, checked: a staged export of a
    plan for the device, made from this model."""
    export_dir = request.export_dir
    manifest = read_manifest(export_dir)
    if manifest.plan.monolithic:
        raise UserError(f"{export_dir} holds a monolithic export; compile a staged export (without --monolithic)")
    refuse_float_only(manifest.plan.options.float_only, f"compile {export_dir}")
    source = model_for_export(request.export_dir, request.model_override)
    plan = build_plan(source.model, manifest.plan.options, manifest.plan.path, manifest.plan.expose_internal)
    if [s.name for s in plan.stages] != [e.name for e in manifest.stages]:
        raise UserError(f"the export in {export_dir} does not match this model's plan; re-export")
    return manifest, source, plan


def _compile_calibration(
    request: CompileRequest, manifest: Manifest, source: ModelSource, plan: StagePlan, out_dir: Path
) -> dict[str, Path]:
    """The calibration files of the plan's stage inputs (in ``request.calib_folder``, outside the
    export), once the inputs and the outputs in ``out_dir`` are checked."""
    calib_dir, export_dir = request.calib_folder, Path(os.path.abspath(request.export_dir))
    if calib_dir == export_dir or export_dir in calib_dir.parents:
        raise UserError(
            f"--calib-dir {calib_dir} lies inside the export {request.export_dir}, the folder copied to the "
            f"device; name a folder outside it (default {default_calib_dir(request.export_dir)})"
        )
    audio_paths = request.options.audio
    audio = calibration_audio(audio_paths, source.model.config.sample_rate, source.model.config.n_src)
    check_run_files(
        source.given()
        + [("--export-dir", request.export_dir), ("--precision", request.precision_dir)]
        + [("the --calib input", p) for p in audio_paths],
        [out_dir / SUMMARY_FILE],
    )
    full_chain = build_plan(source.model, manifest.plan.options, PlanPath.FULL_CHAIN)
    log.info(f"calibration arrays: {calib_dir}")
    return make_calibration(
        full_chain,
        manifest.tile_w,
        audio,
        calib_dir,
        request.options.calib_count,
        tensors={p.name for s in plan.stages for p in s.inputs},
    )


def _pending_manifest(
    out_dir: Path, hw_arch: str, manifest: Manifest, variant: str, stages: list[str], packing: Packing
) -> None:
    """The compile manifest before any job ran: every stage and pack pending (``record_rows``
    fills each entry as its job finishes)."""
    pending = StageArtifacts(PENDING)
    packs = {g.name: PackArtifacts(tuple(g.networks), pending) for g in packing.network_groups if len(g.networks) > 1}
    record = manifest.plan
    CompileManifest(
        hw_arch,
        record.tile_w,
        record.options.block_chan,
        variant,
        {s: pending for s in stages},
        packs,
        packing.mode.value,
        record,
        None,
    ).write(out_dir)


def precision_lines(
    precision_dir: Path | None, stages: list[str], source: ModelSource, tile_w: int, audio: tuple[str, ...] = ()
) -> dict[str, str]:
    """``<stage>.alls`` lines from a `noise` report's ``model_scripts`` folder, refused when the
    report beside it (``noise_report.json``) names another model or tile width, and said when it
    was calibrated on other recordings than ``audio`` (this compile's --calib)."""
    if precision_dir is None:
        return {}
    if not precision_dir.is_dir():
        raise UserError(f"--precision {precision_dir} is not a folder; pass the model_scripts/ folder `noise` wrote")
    missing = [s for s in stages if not (precision_dir / f"{s}.alls").is_file()]
    if missing:
        raise UserError(
            f"--precision {precision_dir} has no {missing[0]}.alls ({len(missing)} stage(s) missing): run "
            "`noise` on this model and plan"
        )
    record = check_noise_binding(precision_dir, source, tile_w)
    if record is not None:
        warn_other_calibration(precision_dir, record, audio, source.config.n_src)
    return {s: (precision_dir / f"{s}.alls").read_text() for s in stages}


def check_noise_binding(precision_dir: Path, source: ModelSource, tile_w: int) -> dict | None:
    """The model (its checkpoint's sha256; random weights: seed and config) and tile width the
    `noise` report beside ``precision_dir`` records must be this compile's; a folder with no report
    is used as given, with a warning that nothing binds it. Returns the report (None: none)."""
    report = Path(precision_dir).parent / NOISE_REPORT
    if not report.is_file():
        log.warning(
            f"compile: --precision {precision_dir} has no {NOISE_REPORT} beside it, so nothing says which "
            "model and tile width its lines were made for; used as given"
        )
        return None
    record = read_json(report, "noise report", f"run `noise` again, or pass --precision {precision_dir} without it")
    made = json.loads(json.dumps(source.to_json()))
    if record.get("model_sha256") or made["model_sha256"]:
        same = record.get("model_sha256") == made["model_sha256"]
    else:
        same = (record.get("model_seed"), record.get("model_config")) == (made["model_seed"], made["model_config"])
    if not same:
        raise UserError(
            f"--precision {precision_dir} was made by `noise` for {record.get('model_source')} "
            f"(sha256 {str(record.get('model_sha256'))[:12]}), not this export's model {made['model_source']} "
            f"(sha256 {str(made['model_sha256'])[:12]}); run `noise` on this model"
        )
    if record.get("tile_w") != tile_w:
        raise UserError(
            f"--precision {precision_dir} was made by `noise` at tile width {record.get('tile_w')} and this "
            f"export's is {tile_w}; run `noise --tile-w {tile_w}` on this model"
        )
    return record


def warn_other_calibration(precision_dir: Path, record: dict, audio: tuple[str, ...], n_src: int) -> None:
    """A warning when the `noise` report's calibration recordings are not this compile's: the
    advice and the HEF's ranges would come from different audio (issue 37)."""
    from ..assets import DEMO_MIXTURE
    from ..quantization.datasets import recordings

    noise_files = {Path(f).resolve() for f in (record.get("calibration_set") or {}).get("files") or []}
    ours = {r.path.resolve() for r in recordings(list(audio) or [str(DEMO_MIXTURE)], n_src)}
    if noise_files and noise_files != ours:
        log.warning(
            f"compile: the precision advice in {precision_dir} was calibrated on {len(noise_files)} recording(s) "
            f"({len(noise_files - ours)} not among this compile's {len(ours)} --calib recording(s)): the advice and "
            "the HEF's ranges come from different audio; pass `noise` and `compile` the same --calib"
        )


def request_record(request: CompileRequest) -> dict:
    """The settings a compile's jobs were prepared with (``pending.json``: what --resume keeps)."""
    options = request.options
    absolute = lambda p: None if p is None else os.path.abspath(p)  # noqa: E731
    return {
        "--calib": [absolute(p) for p in options.audio],
        "--calib-count": options.calib_count,
        "--variant-name": request.variant.name,
        "--script-line": list(request.variant.lines),
        "--precision": absolute(request.precision_dir),
        "--model": request.model_override,
        "--calib-dir": str(request.calib_folder),
    }


def check_resumable(request: CompileRequest, pending: PendingJobs) -> None:
    """``resume`` runs the recorded jobs as they were prepared: a setting given here (not left
    at its default) that differs from the recorded one is refused in one line."""
    if pending.hw_arch != request.options.hw_arch:
        raise UserError(
            f"--resume: the jobs in {pending.jobs_dir} are for {pending.hw_arch}, not --hw-arch "
            f"{request.options.hw_arch}; pass --hw-arch {pending.hw_arch}"
        )
    given = request_record(request)
    if request.calib_dir is None:
        given["--calib-dir"] = None
    defaults = {
        "--calib": [],
        "--calib-count": CompileOptions().calib_count,
        "--variant-name": DEFAULT_VARIANT.name,
        "--script-line": [],
        "--precision": None,
        "--model": None,
        "--calib-dir": None,
    }
    for flag, value in given.items():
        recorded = pending.request.get(flag)
        if value != defaults[flag] and value != recorded:
            raise UserError(
                f"--resume runs the jobs recorded in {pending.jobs_dir}, prepared with {flag} {recorded}, not "
                f"{value}; drop {flag}, or compile without --resume to prepare the jobs again (stages whose "
                "inputs did not change are reused)"
            )
