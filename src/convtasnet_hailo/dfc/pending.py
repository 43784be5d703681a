"""The jobs a compile leaves in its output folder, and what finishes them.

A compile (or a dry run) writes every stage job and pack job to ``<hef_dir>/jobs/<run_tag>.json``
and lists them in ``<hef_dir>/jobs/pending.json`` (their order, their summary fields, and the folder
their relative paths start from). Each job that makes its product (its HEF, or the optimized HAR of
a stage whose HEF is its pack's) gets ``<run_tag>.done.json`` beside it: the product's sha256, the
sha256 of everything the job read (the stage ONNX, the model script text with its precision lines,
the calibration arrays, the target; a pack: its stages' HARs and its joint script) and the SDK
version. A job counts as finished only when all three still hold, so a killed compile resumes
where it stopped and a changed input compiles its stage again (:func:`finished`).

``python -m convtasnet_hailo.dfc.worker --pending DIR`` runs the unfinished jobs in this Python
(:func:`run_pending`; the SDK's venv needs only this package and numpy). Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..files import sha256_file, write_text_atomically
from .driver import CompileJob, CompileResult, PackJob, job_from_json, run_job

log = logging.getLogger(__name__)

PENDING_FILE = "pending.json"
FORMAT = "convtasnet-hailo-pending-jobs"
VERSION = 1
DONE_SUFFIX = ".done.json"
#: The fields of a summary row that come from the case (the rest come from its CompileResult).
CASE_FIELDS = ("run_tag", "stage", "path", "tile_w", "block_chan", "variant")
RESULT_PATHS = ("har_path", "hef_path", "log", "hef_log", "failure_file")
#: The columns of a compile's (and a grid's) summary TSV, one row per job.
SUMMARY_COLUMNS = [
    "run_tag",
    "stage",
    "path",
    "tile_w",
    "block_chan",
    "variant",
    "hw_arch",
    "status",
    "har_success",
    "hef_success",
    "exception_type",
    "failure_head",
    "signature",
    "log",
    "hef_log",
    "failure_file",
    "har_path",
    "hef_path",
    "seconds_parse",
    "seconds_optimize",
    "seconds_compile",
    "sdk_version",
]


@dataclasses.dataclass(frozen=True)
class PendingJob:
    """One job of a compile and its summary fields (``CASE_FIELDS``)."""

    job: CompileJob | PackJob
    case: dict


@dataclasses.dataclass(frozen=True)
class PendingJobs:
    """What ``pending.json`` lists: stage jobs (run first) and pack jobs (each after its stages),
    their paths relative to ``root``; ``hw_arch`` the target."""

    jobs_dir: Path
    root: Path
    hw_arch: str
    stages: tuple[PendingJob, ...]
    packs: tuple[PendingJob, ...]
    #: the settings the jobs were prepared with (``compile.export_compile``: what --resume keeps)
    request: dict = dataclasses.field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return self.jobs_dir.parent


def write_pending(
    jobs_dir: Path, root: Path, hw_arch: str, items: tuple[list[PendingJob], list[PendingJob]], request: dict
) -> Path:
    """Each job's JSON and ``pending.json`` in ``jobs_dir`` (written last): ``items`` the stage
    jobs and the pack jobs, ``request`` the settings they were prepared with."""
    stages, packs = items
    jobs_dir.mkdir(parents=True, exist_ok=True)
    for item in stages + packs:
        write_text_atomically(jobs_dir / f"{item.job.run_tag}.json", json.dumps(item.job.to_json(), indent=1))
    listed = lambda items: [{"job": f"{i.job.run_tag}.json", "case": i.case} for i in items]  # noqa: E731
    index = {
        "format": FORMAT,
        "format_version": VERSION,
        "root": Path(os.path.relpath(os.path.abspath(root), os.path.abspath(jobs_dir))).as_posix(),
        "hw_arch": hw_arch,
        "stages": listed(stages),
        "packs": listed(packs),
        "request": request,
    }
    path = jobs_dir / PENDING_FILE
    write_text_atomically(path, json.dumps(index, indent=1) + "\n")
    return path


def read_pending(directory: Path) -> PendingJobs:
    """The jobs listed in ``directory`` (a compile's output folder or its ``jobs/``); a one-line
    error when there are none or the list is not readable."""
    directory = Path(directory)
    jobs_dir = directory if (directory / PENDING_FILE).is_file() else directory / "jobs"
    index_path = jobs_dir / PENDING_FILE
    if not index_path.is_file():
        raise UserError(
            f"{directory} holds no {PENDING_FILE} (no compile or dry run wrote jobs there); run "
            "`convtasnet-hailo compile --export-dir EXPORT --dry-run` (or without --dry-run) first"
        )
    try:
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"format {index.get('format')!r}")
        items = lambda key: tuple(  # noqa: E731
            PendingJob(job_from_json(json.loads((jobs_dir / entry["job"]).read_text())), dict(entry["case"]))
            for entry in index[key]
        )
        root = Path(os.path.abspath(jobs_dir / index["root"]))
        return PendingJobs(
            jobs_dir, root, index["hw_arch"], items("stages"), items("packs"), index.get("request") or {}
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{index_path} is not a readable job list ({exc}); run `convtasnet-hailo compile` again"
        ) from None


class Hashes:
    """sha256 of files, each read once per run (the calibration arrays are the big ones)."""

    def __init__(self) -> None:
        self.known: dict[Path, str] = {}

    def of(self, path: Path) -> str:
        path = Path(os.path.abspath(path))
        if path not in self.known:
            if not path.is_file():
                raise UserError(
                    f"{path}, which a compile job reads, is missing; copy the export, its calibration folder and "
                    "the HEF folder together as the compile left them (or compile again without --resume)"
                )
            self.known[path] = sha256_file(path)
        return self.known[path]


def inputs_sha256(job: CompileJob | PackJob, root: Path, hashes: Hashes) -> str:
    """sha256 of everything ``job`` reads (paths relative to ``root``) and every setting it uses."""
    import hashlib

    if isinstance(job, PackJob):
        parts = [job.hw_arch, job.script_text, list(job.stages), [hashes.of(root / p) for p in job.har_paths]]
    else:
        parts = [
            job.hw_arch,
            job.script_text,
            job.compile_hef,
            list(job.input_names),
            [list(s) for s in job.input_shapes],
            list(job.end_node_names),
            hashes.of(root / job.onnx_path),
            [hashes.of(root / p) for p in job.calib_paths],
        ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def product(job: CompileJob | PackJob, root: Path) -> Path:
    """What a job makes: its HEF, or the optimized HAR of a stage whose HEF is its pack's."""
    return root / job.out_dir / f"{job.run_tag}.{'hef' if getattr(job, 'compile_hef', True) else 'har'}"


def _done_path(job: CompileJob | PackJob, root: Path) -> Path:
    return root / job.out_dir / f"{job.run_tag}{DONE_SUFFIX}"


def mark_done(job: CompileJob | PackJob, root: Path, result: CompileResult, fingerprint: str) -> None:
    """``<run_tag>.done.json`` for a job whose product was made (``result``: paths relative to
    ``root`` or absolute inside it)."""
    made = product(job, root)
    relative = {f: _relative_to(getattr(result, f), root) for f in RESULT_PATHS if getattr(result, f)}
    record = {
        "inputs_sha256": fingerprint,
        "sdk_version": result.sdk_version,
        "product": made.name,
        "product_sha256": sha256_file(made),
        "result": dataclasses.asdict(dataclasses.replace(result, **relative)),
    }
    write_text_atomically(_done_path(job, root), json.dumps(record, indent=1) + "\n")


def _relative_to(path: str, root: Path) -> str:
    absolute = Path(os.path.abspath(path if Path(path).is_absolute() else root / path))
    base = Path(os.path.abspath(root))
    return absolute.relative_to(base).as_posix() if base in absolute.parents else path


def finished(job: CompileJob | PackJob, root: Path, fingerprint: str, sdk_version: str | None) -> CompileResult | None:
    """The recorded result (paths absolute) of a job finished earlier: its product present with the
    recorded sha256, made from the same inputs (``fingerprint``) by the same SDK (``sdk_version``;
    None: not known here, not compared). None when any of these fails: the job runs again."""
    done, made = _done_path(job, root), product(job, root)
    if not done.is_file() or not made.is_file():
        return None
    try:
        record = json.loads(done.read_text())
        same = record["inputs_sha256"] == fingerprint and record["product"] == made.name
        if not same or (sdk_version is not None and record["sdk_version"] != sdk_version):
            return None
        if sha256_file(made) != record["product_sha256"]:
            return None
        result = CompileResult(**record["result"])
    except (OSError, ValueError, KeyError, TypeError):  # a record that is not one: compiled again
        return None
    return dataclasses.replace(
        result, **{f: str(root / getattr(result, f)) for f in RESULT_PATHS if getattr(result, f)}
    )


def summary_row(case: dict, hw_arch: str, status: str, result: CompileResult | None) -> dict:
    """One summary row: the case's fields, the target, ``status`` and the result's fields."""
    row = {k: case[k] for k in CASE_FIELDS} | {"hw_arch": hw_arch}
    if result is not None:
        row.update(result.to_json())
    row["status"] = status
    return row


class Progress:
    """``[k/n] what ... ETA m:ss`` lines: the estimate from the jobs this run did (reused ones
    take no time and do not count)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.worked, self.started = total, 0, 0, time.perf_counter()

    def line(self, text: str, reused: bool) -> str:
        self.done += 1
        self.worked += 0 if reused else 1
        left = self.total - self.done
        eta = ""
        if left and self.worked:
            seconds = round((time.perf_counter() - self.started) / self.worked * left)
            eta = f" ETA {seconds // 60}:{seconds % 60:02d}"
        return f"[{self.done}/{self.total}] {text}{eta}"


def members_ready(pack: PackJob, done: set[str], stage_tags: dict[str, str]) -> bool:
    """A pack runs once every stage in it has its HAR (``done``: the finished stage run tags)."""
    return all(stage_tags.get(stage) in done for stage in pack.stages)


def run_pending(directory: Path, sdk=None, on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Every unfinished job in ``directory`` run in this Python (stages, then the packs whose
    stages all finished), finished ones skipped; one summary row per job (``on_row`` each)."""
    from .driver import import_sdk, sdk_version

    pending = read_pending(directory)
    sdk = sdk or import_sdk()
    version, hashes, rows = sdk_version(sdk), Hashes(), []
    items = list(pending.stages) + list(pending.packs)
    progress, ok = Progress(len(items)), set()
    stage_tags = {item.job.stage: item.job.run_tag for item in pending.stages}
    for item in items:
        job, root = item.job, pending.root
        if isinstance(job, PackJob) and not members_ready(job, ok, stage_tags):
            row = summary_row(item.case, pending.hw_arch, "skipped", None)
            row["failure_head"] = "a stage of this pack did not compile"
        else:
            row = _run_one(item, root, version, hashes, sdk)
        if row["status"] in ("compiled", "reused"):
            ok.add(job.run_tag)
        rows.append(row)
        log.info(progress.line(f"{job.run_tag}: {row['status']}", row["status"] == "reused"))
        if on_row is not None:
            on_row(row)
    return rows


def _run_one(item: PendingJob, root: Path, version: str, hashes: Hashes, sdk) -> dict:
    """One job: its recorded result when finished, else run in-process, ``done.json`` written."""
    job = item.job
    fingerprint = inputs_sha256(job, root, hashes)
    earlier = finished(job, root, fingerprint, version)
    if earlier is not None:
        return summary_row(item.case, job.hw_arch, "reused", earlier)
    result = run_job(absolute_job(job, root), sdk)
    if result.ok:
        mark_done(job, root, result, fingerprint)
    return summary_row(item.case, job.hw_arch, "compiled" if result.ok else "failed", result)


def absolute_job(job: CompileJob | PackJob, root: Path) -> CompileJob | PackJob:
    if isinstance(job, PackJob):
        return dataclasses.replace(
            job, out_dir=str(root / job.out_dir), har_paths=tuple(str(root / p) for p in job.har_paths)
        )
    return dataclasses.replace(
        job,
        onnx_path=str(root / job.onnx_path),
        out_dir=str(root / job.out_dir),
        calib_paths=tuple(str(root / p) for p in job.calib_paths),
    )
