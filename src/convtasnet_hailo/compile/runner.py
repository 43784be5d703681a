"""Runs compile cases: prepares exports, calibration and model scripts, then hands one task per
stage to an executor (local threads, ``--jobs``; or a Ray cluster), which compiles it in-process,
in a worker process (``--hailo-python``) or not at all (``--dry-run``, which checks the case's
inputs where it would run), appending one summary row per case as it finishes. Main environment
only (needs the plan)."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import onnx

from ..dfc.driver import CompileJob, CompileResult, PackJob
from ..dfc.model_script import ScriptVariant, joint_script, stated
from ..dfc.pending import Hashes, Progress, inputs_sha256, mark_done, summary_row
from ..dfc.pending import finished as done_before
from ..dfc.remote import absolute_result, job_inputs, run_case
from ..errors import UserError
from ..export.manifest import Manifest
from ..files import write_text_atomically
from ..runs.run_folder import TsvWriter, read_tsv
from ..tasks.base import CaseExecutor, Task, TaskFailure
from ..tasks.files import unpack
from .profile import GridCase, run_tag

log = logging.getLogger(__name__)


class ExecMode(str, enum.Enum):
    DRY_RUN = "dry-run"  # write cases, scripts, calibration; compile nothing
    IN_PROCESS = "in-process"  # hailo_sdk_client imports here
    WORKER = "worker"  # a subprocess per case in --hailo-python (or this Python, for --jobs)


@dataclasses.dataclass(frozen=True)
class PreparedCase:
    """A case and its job; what the job read is hashed when it runs (``dfc.pending.inputs_sha256``)."""

    case: GridCase
    job: CompileJob | PackJob


def end_node_names(onnx_path: Path) -> tuple[str, ...]:
    """The parser's end nodes: the ONNX node that writes each graph output, in the graph's output
    order (the stage's port order; ``plan.onnx_names.port_original_names`` names the same nodes)."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    writer = {output: node.name for node in model.graph.node for output in node.output}
    missing = [o.name for o in model.graph.output if o.name not in writer]
    if missing:
        raise UserError(f"{onnx_path.name}: no node writes its output {missing[0]}; export the model again")
    return tuple(writer[o.name] for o in model.graph.output)


def calibration_count(paths) -> int:
    """Calibration tiles a stage's compile gets: the fewest rows among its inputs' files."""
    from ..records import load_array

    return min(len(load_array(Path(path), "calibration array", "compile again", mmap=True)) for path in paths)


def write_scripts(variants: tuple[ScriptVariant, ...], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for variant in variants:
        paths[variant.name] = directory / f"{variant.name}.alls"
        write_text_atomically(paths[variant.name], variant.text())
    return paths


@dataclasses.dataclass(frozen=True)
class ExportCases:
    """What the compile jobs of one export share. Paths in a job are relative to ``root`` (the run
    folder), so a dry-run folder can be copied to an SDK machine whole. Stages in ``har_only``
    stop at the optimized HAR (their pack compiles the HEF); ``stage_lines`` are appended to a
    stage's model script (the 16-bit layers `noise` advises)."""

    manifest: Manifest
    export_dir: Path
    calib_files: Mapping[str, Path]
    scripts: Mapping[str, Path]
    hw_arch: str
    root: Path
    out_dir: Path
    har_only: frozenset[str] = frozenset()
    stage_lines: Mapping[str, str] = dataclasses.field(default_factory=dict)


def prepare_cases(cases: list[GridCase], export: ExportCases) -> list[PreparedCase]:
    """Compile jobs for ``cases`` of one export."""
    return [_prepare_case(case, export) for case in cases]


def _prepare_case(case: GridCase, export: ExportCases) -> PreparedCase:
    entry = export.manifest.stage(case.stage)
    onnx_path = export.export_dir / entry.file
    root, calib_files = export.root, export.calib_files
    calib = tuple(str(calib_files[p.name].relative_to(root)) for p in entry.inputs)
    script = stated(
        export.scripts[case.variant].read_text() + export.stage_lines.get(case.stage, ""),
        calibration_count(calib_files[p.name] for p in entry.inputs),
    )
    job = CompileJob(
        stage=case.stage,
        onnx_path=str(onnx_path.relative_to(root)),
        input_names=tuple(p.name for p in entry.inputs),
        input_shapes=tuple(p.shape for p in entry.inputs),
        end_node_names=end_node_names(onnx_path),
        hw_arch=export.hw_arch,
        script_text=script,
        out_dir=str(export.out_dir.relative_to(root)),
        run_tag=case.run_tag,
        calib_paths=calib,
        compile_hef=case.stage not in export.har_only,
    )
    return PreparedCase(case, job)


def prepare_packs(
    packs: list[tuple[str, tuple[str, ...]]],
    stage_cases: list[PreparedCase],
    hw_arch: str,
    tile_w: int,
    block_chan: int,
    variant: str,
) -> list[PreparedCase]:
    """One join-and-compile job per pack of several stages, from its stages' HAR-only jobs
    (a pack is compiled again when any of its stages' HARs changed: ``dfc.pending.inputs_sha256``)."""
    by_stage = {p.case.stage: p for p in stage_cases}
    prepared = []
    for pack, stages in packs:
        members = [by_stage[s] for s in stages]
        tag = run_tag(pack, tile_w, block_chan, variant)
        job = PackJob(
            pack,
            tuple(str(Path(m.job.out_dir) / f"{m.job.run_tag}.har") for m in members),
            stages,
            hw_arch,
            members[0].job.out_dir,
            tag,
            script_text=joint_script(members[0].job.script_text),
        )
        case = GridCase(tag, members[0].case.path, pack, tile_w, block_chan, variant)
        prepared.append(PreparedCase(case, job))
    return prepared


def _row(prepared: PreparedCase, hw_arch: str, status: str, result: CompileResult | None) -> dict:
    return summary_row(dataclasses.asdict(prepared.case), hw_arch, status, result)


def done_run_tags(summary_path: Path) -> set[str]:
    """Cases a previous run finished (compiled, passing or failing): --resume skips them."""
    if not summary_path.is_file():
        return set()
    return {row["run_tag"] for row in read_tsv(summary_path) if row.get("status") in ("compiled", "failed", "reused")}


@dataclasses.dataclass(frozen=True)
class Execution:
    """How a run's cases are compiled: ``mode``, from the folder ``root`` (where the products and
    relative paths live), by ``executor``, one ``summary`` row per finished case (and ``on_row``
    called with it: `compile` records it in its manifest at once). A job whose product was made
    from the same inputs by the same SDK (``sdk_version``; None: not known here) is reused
    (``dfc.pending.finished``). ``jobs_dir``: where `compile` wrote the jobs (``dfc.pending``);
    None: they are written to ``root``/jobs here (a grid)."""

    mode: ExecMode
    root: Path
    summary: TsvWriter
    hw_arch: str
    executor: CaseExecutor
    hailo_python: str | None = None
    timeout_s: float | None = None
    sdk_version: str | None = None
    jobs_dir: Path | None = None
    on_row: Callable[[dict], None] | None = None


def execute(prepared: list[PreparedCase], run: Execution, skip: set[str] = frozenset()) -> list[dict]:
    """Runs the cases through ``run.executor``; one summary row per case, appended as each
    finishes, with a ``[k/n] ... ETA m:ss`` line."""
    rows: list[dict] = []
    todo = [p for p in prepared if p.case.run_tag not in skip]
    if len(todo) < len(prepared):
        log.info(f"resume: {len(prepared) - len(todo)} case(s) already done, {len(todo)} to go")
    jobs_dir = run.jobs_dir or _write_jobs(todo, run.root)
    progress = Progress(len(todo))

    def finished(row: dict) -> None:
        rows.append(row)
        run.summary.append(row)
        if run.on_row is not None:
            run.on_row(row)
        _report_row(row, progress)

    fingerprints, earlier = {}, {}
    if run.mode is not ExecMode.DRY_RUN:
        hashes = Hashes()
        for item in todo:
            fingerprints[item.case.run_tag] = inputs_sha256(item.job, run.root, hashes)
            result = done_before(item.job, run.root, fingerprints[item.case.run_tag], run.sdk_version)
            if result is not None:
                earlier[item.case.run_tag] = result
        for item in todo:
            if item.case.run_tag in earlier:
                finished(_row(item, run.hw_arch, "reused", earlier[item.case.run_tag]))
    by_tag = {p.case.run_tag: p for p in todo}
    tasks = [_task(item, run) for item in todo if item.case.run_tag not in earlier]
    for task, outcome in run.executor.run(tasks):
        item = by_tag[task.key]
        finished(_case_row(item, outcome, run, fingerprints.get(task.key, "")))
    if run.mode is ExecMode.DRY_RUN and run.jobs_dir is None:
        log.info(
            f"dry run: {len(todo)} case(s) written to {jobs_dir} (run one with "
            f"`python -m convtasnet_hailo.dfc.worker jobs/<case>.json` from {run.root})"
        )
    return rows


def _write_jobs(todo: list[PreparedCase], root: Path) -> Path:
    """The job files, in ``root``/jobs: what a user copies to an SDK machine."""
    jobs_dir = root / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    for item in todo:
        write_text_atomically(jobs_dir / f"{item.case.run_tag}.json", json.dumps(item.job.to_json(), indent=1))
    return jobs_dir


def _report_row(row: dict, progress: Progress) -> None:
    if row["status"] == "dry-run":
        return  # thousands of them: the closing line says where they went
    made = "HEF" if row.get("wants_hef", True) else "HAR"
    outcome = made if row["status"] in ("compiled", "reused") else (row.get("exception_type") or row["status"])
    reused = " (reused)" if row["status"] == "reused" else ""
    text = f"{row['run_tag']}: {outcome}{reused} {row.get('failure_head') or ''}".rstrip()
    log.info(progress.line(text, row["status"] == "reused"))


def _task(item: PreparedCase, run: Execution) -> Task:
    """One case as a task: in the run folder (local), or with its inputs shipped (Ray), on a node
    with the Dataflow Compiler (the ``hailo_sdk`` resource) unless it is a dry run."""
    job, mode, root, executor = item.job.to_json(), run.mode, run.root, run.executor
    if executor.ships_files:
        files = {path: executor.share(root / path) for path in job_inputs(item.job)}
        args = (job, mode.value, None, files, run.hailo_python, run.timeout_s)
    else:
        args = (job, mode.value, str(root), None, run.hailo_python or sys.executable, run.timeout_s)
    resources = {"CPU": 1} if mode is ExecMode.DRY_RUN else {"hailo_sdk": 1}
    return Task(item.case.run_tag, run_case, args, resources)


def _case_row(item: PreparedCase, outcome, run: Execution, fingerprint: str) -> dict:
    """The summary row of a finished case; a shipped case's products land in the run folder, and
    a made product gets its ``done.json`` (``fingerprint``: what its job read)."""
    mode, root, hw_arch = run.mode, run.root, run.hw_arch
    if isinstance(outcome, TaskFailure):
        row = _row(item, hw_arch, "failed", None)
        attempts = f" (after {outcome.attempts} attempts)" if outcome.attempts > 1 else ""
        return row | {"exception_type": outcome.error_type, "failure_head": outcome.message + attempts}
    if mode is ExecMode.DRY_RUN:
        return _row(item, hw_arch, "dry-run", None)
    unpack(outcome["files"], root)
    result = absolute_result(outcome["result"], root)
    if result.ok:
        mark_done(item.job, root, result, fingerprint)
    return _row(item, hw_arch, "compiled" if result.ok else "failed", result)
