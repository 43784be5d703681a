"""One compile case wherever an executor runs it: in the run folder itself (local threads), or on
another machine with its input files shipped in and its products shipped back (Ray).

Torch-free, like the rest of the driver side: a node needs this package, numpy and the SDK.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from ..records import load_array
from ..tasks.files import FileBundle, collect_folder, unpack
from .driver import CompileJob, CompileResult, PackJob, job_from_json, run_job
from .pending import absolute_job

PATH_FIELDS = ("har_path", "hef_path", "log", "hef_log", "failure_file")


def job_inputs(job: CompileJob | PackJob) -> tuple[str, ...]:
    """What a job reads, relative to the run folder (a pack reads its stages' HARs)."""
    if isinstance(job, PackJob):
        return tuple(job.har_paths)
    return (job.onnx_path, *job.calib_paths)


def run_case(
    job_json: dict,
    mode: str,
    root: str | None = None,
    files: FileBundle | None = None,
    hailo_python: str | None = None,
    timeout_s: float | None = None,
) -> dict:
    """Runs one job (paths relative to a run folder): in ``root``, or, given ``files``, in a
    scratch folder they are unpacked into. ``mode``: ``dry-run`` checks the inputs are there and
    readable, ``in-process`` compiles with this Python's SDK, ``worker`` in ``hailo_python``.

    Returns ``{"result": CompileResult JSON or None, "files": products}``, paths in the result
    relative to the run folder; products (HAR, HEF, logs, failure notes) only when shipped."""
    if files is None:
        return _run_in(Path(root), job_json, mode, hailo_python, timeout_s, ship_back=False)
    with tempfile.TemporaryDirectory(prefix="convtasnet-case-") as scratch:
        unpack(files, Path(scratch))
        return _run_in(Path(scratch), job_json, mode, hailo_python, timeout_s, ship_back=True)


def _run_in(
    root: Path, job_json: dict, mode: str, hailo_python: str | None, timeout_s: float | None, ship_back: bool
) -> dict:
    job = job_from_json(job_json)
    if mode == "dry-run":
        check_inputs(job, root)
        return {"result": None, "files": {}}
    started = time.time()
    absolute = absolute_job(job, root)
    if mode == "worker":
        from .worker import run_in_worker

        jobs_dir = Path(absolute.out_dir) / "jobs"  # beside its products: never outside the run's folders
        jobs_dir.mkdir(parents=True, exist_ok=True)
        result = run_in_worker(absolute, hailo_python, jobs_dir / f"{job.run_tag}.run.json", timeout_s)
    else:
        result = run_job(absolute)
    made = collect_folder(root, job.out_dir, since=started) if ship_back else {}
    for shipped in job_inputs(job):  # a pack's stage HARs came in; only what the job made goes back
        made.pop(shipped, None)
    return {"result": _relative(result, root).to_json(), "files": made}


def check_inputs(job: CompileJob | PackJob, root: Path) -> None:
    """A dry run's check where the case would run: every input present, calibration arrays
    loadable with as many channels as the stage's input."""
    if isinstance(job, PackJob):
        return  # its stages' HARs do not exist before they are compiled
    onnx_path = root / job.onnx_path
    if not onnx_path.is_file() or onnx_path.stat().st_size == 0:
        raise FileNotFoundError(f"{job.onnx_path} is missing or empty")
    for path, shape in zip(job.calib_paths, job.input_shapes, strict=False):
        array = load_array(root / path, "calibration array", "compile again", mmap=True)
        if array.ndim != 4 or array.shape[-1] != shape[1]:
            raise ValueError(f"{path}: calibration shape {array.shape} does not fit input shape {shape}")


def _relative(result: CompileResult, root: Path) -> CompileResult:
    changes = {
        f: str(Path(getattr(result, f)).relative_to(root))
        for f in PATH_FIELDS
        if getattr(result, f) and Path(getattr(result, f)).is_relative_to(root)
    }
    return dataclasses.replace(result, **changes)


def absolute_result(result_json: dict, root: Path) -> CompileResult:
    """A case's result with its paths in the driver's run folder."""
    result = CompileResult(**result_json)
    return dataclasses.replace(
        result,
        **{
            f: str(root / getattr(result, f))
            for f in PATH_FIELDS
            if getattr(result, f) and not Path(getattr(result, f)).is_absolute()
        },
    )
