"""The compile worker: runs one :class:`CompileJob` or :class:`PackJob` in another Python (the SDK's venv,
Python 3.10-3.12).

Protocol (files, JSON): the parent writes ``<job>.json``; runs
``<hailo-python> -m convtasnet_hailo.dfc.worker <job>.json`` with this package on
PYTHONPATH; the worker writes ``<job>.result.json`` (a :class:`CompileResult`). If the worker
dies or times out before writing it, the parent normalizes what it printed.

Imports: standard library, ``convtasnet_hailo.dfc`` and ``errors`` only (no torch, no
onnxruntime; numpy only to read calibration arrays).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..errors import UserError
from .driver import SDK_MODULE, CompileJob, CompileResult, PackJob, job_from_json, run_job, write_result
from .failures import normalize

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding convtasnet_hailo/


def result_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name.replace(".json", ".result.json"))


#: How long the SDK's interpreter may take to start and import the SDK (TensorFlow included).
PROBE_TIMEOUT_S = 300.0


def _worker_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])))


def probe_interpreter(python: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Once, before the first stage: ``python`` starts, imports the SDK and this worker; returns
    the SDK's version there (what a reused job must have been made by). A wrong
    ``--hailo-python`` is one error, not one failure per stage."""
    code = f"import {SDK_MODULE}, convtasnet_hailo.dfc.worker; print(getattr({SDK_MODULE}, '__version__', 'unknown'))"
    fix = "pass the bin/python of the venv the Dataflow Compiler wheel is installed in"
    try:
        proc = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_worker_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"--hailo-python {python} did not import {SDK_MODULE} within {timeout_s:g} s; {fix}") from None
    except OSError as exc:
        raise UserError(f"cannot start --hailo-python {python}: {exc.strerror}; {fix}") from None
    if proc.returncode != 0:
        lines = (proc.stderr + proc.stdout).strip().splitlines()
        said = lines[-1][:160] if lines else f"it exited with status {proc.returncode} and said nothing"
        raise UserError(f"--hailo-python {python} cannot import {SDK_MODULE} ({said}); {fix}")
    said = proc.stdout.strip().splitlines()
    return said[-1] if said else "unknown"


def run_in_worker(job: CompileJob | PackJob, python: str, job_path: Path, timeout_s: float | None) -> CompileResult:
    """Runs ``job`` in ``python`` (a path to an interpreter that can import hailo_sdk_client)."""
    job_path.write_text(json.dumps(job.to_json(), indent=1))
    out = result_path(job_path)
    out.unlink(missing_ok=True)
    env = _worker_env()
    try:
        proc = subprocess.run(
            [python, "-m", "convtasnet_hailo.dfc.worker", str(job_path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        failure = normalize(
            "Timeout",
            f"stage {job.stage} did not finish within {timeout_s:g} s",
            (exc.stdout or "") if isinstance(exc.stdout, str) else "",
        )
        result = CompileResult(job.run_tag, job.stage)
        result.record_failure(failure, Path(job.out_dir))
        return result
    except OSError as exc:
        raise UserError(f"cannot start --hailo-python {python}: {exc.strerror}") from None
    if out.is_file():
        return CompileResult(**json.loads(out.read_text()))
    result = CompileResult(job.run_tag, job.stage)
    result.record_failure(
        normalize(None, f"worker exited with status {proc.returncode}", proc.stderr + proc.stdout), Path(job.out_dir)
    )
    return result


USAGE = (
    "usage: python -m convtasnet_hailo.dfc.worker JOB.json\n"
    "       python -m convtasnet_hailo.dfc.worker --pending DIR   (every unfinished job a compile left in DIR)"
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--pending":
        return run_pending_folder(Path(argv[1]))
    if len(argv) != 1 or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    job_path = Path(argv[0])
    job = job_from_json(json.loads(job_path.read_text()))
    try:
        result = run_job(job)
    except Exception as exc:  # the SDK missing in this interpreter, say
        result = CompileResult(job.run_tag, job.stage)
        result.record_failure(normalize(type(exc).__name__, str(exc)), Path(job.out_dir))
    write_result(result_path(job_path), result)
    return 0 if result.ok else 1


def run_pending_folder(directory: Path) -> int:
    """``--pending DIR``: every unfinished job of the compile in DIR run in this Python, each
    recorded in DIR's summary TSV and ``compile_manifest.json`` as it finishes; exit 0 when every
    job made its product, 1 when one failed, 2 (one line) when DIR holds no jobs or no SDK."""
    from ..runs.run_folder import TsvWriter
    from .manifest import record_rows
    from .pending import SUMMARY_COLUMNS, read_pending, run_pending

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        out_dir = read_pending(directory).out_dir
        summary_path = out_dir / "compile_summary.tsv"
        summary_path.unlink(missing_ok=True)
        summary = TsvWriter(summary_path, SUMMARY_COLUMNS)

        def recorded(row: dict) -> None:
            summary.append(row)
            record_rows(out_dir, [row])

        rows = run_pending(directory, on_row=recorded)
    except UserError as exc:
        print(f"convtasnet_hailo.dfc.worker: error: {exc}", file=sys.stderr)
        return 2
    failed = [r["run_tag"] for r in rows if r["status"] not in ("compiled", "reused")]
    made = len(rows) - len(failed)
    print(f"{made} of {len(rows)} job(s) done ({sum(r['status'] == 'reused' for r in rows)} reused); {summary_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
