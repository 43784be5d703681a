"""Steps 5 and 6: the compile (``compile.export_compile.run_compile``) with the build's
calibration audio and the precision advice, and the bundle for the Pi (``runtime.bundle``).

Where the compile writes: its calibration arrays into ``BUILD/calib``, its HARs, HEFs, logs, jobs
and compile manifest into ``BUILD/hailo/<arch>``; never into ``BUILD/export``, the folder a user
copies. A stage compiled before from the same inputs by the same SDK is reused (the compile's own
records), so a resumed build compiles only what it had not finished."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from .steps import NOISE, Context

log = logging.getLogger(__name__)

DEVICE, ARCHIVE = "device", "device.tar.gz"
#: The compile's folders in the build folder.
CALIB, HAILO = "calib", "hailo"


class Pending(Exception):
    """The compile cannot run here (no Dataflow Compiler, no --hailo-python): the build stops,
    resumable."""


class StepFailed(Exception):
    """A step ran and failed (``outputs``: what it found, kept in build.json)."""

    def __init__(self, detail: str, outputs: dict):
        super().__init__(detail)
        self.outputs = outputs


def precision_dir(ctx: Context, stages: list[str]) -> Path | None:
    """The advice's model scripts when they name every exported stage, else None (said)."""
    folder = ctx.out / NOISE / "model_scripts"
    missing = [s for s in stages if not (folder / f"{s}.alls").is_file()]
    if missing:
        log.warning(
            f"build: the precision advice names no {missing[0]} ({len(missing)} of {len(stages)} stages): "
            "those stages compile at 8 bits"
        )
        return None
    return folder


def compile_request(ctx: Context, stages: list[str], hailo_python: str | None, timeout_s: float | None):
    from ..compile.export_compile import CompileRequest
    from ..compile.orchestrate import CompileOptions

    options = CompileOptions(
        hw_arch=ctx.settings.hw_arch,
        audio=(str(ctx.out / "calib" / "audio"),),
        calib_count=ctx.settings.calib_count,
        hailo_python=hailo_python,
        timeout_s=timeout_s,
    )
    return CompileRequest(
        export_dir=ctx.out / "export",
        options=options,
        model_override=str(ctx.model_copy),
        precision_dir=precision_dir(ctx, stages),
        calib_dir=ctx.out / CALIB,
        hef_dir=hef_dir(ctx),
    )


def hef_dir(ctx: Context) -> Path:
    return ctx.out / HAILO / ctx.settings.hw_arch


def resume_command(out: Path) -> str:
    return f"convtasnet-hailo build --resume {out}"


def run_compile_step(ctx: Context, stages: list[str], hailo_python: str | None, timeout_s: float | None) -> dict:
    """Step 5: every stage compiled (finished stages reused by their input hashes); Pending when
    no compiler is here, StepFailed when a stage or pack failed."""
    from ..compile.export_compile import run_compile
    from ..compile.orchestrate import exec_mode
    from ..tasks.options import open_executor

    request = compile_request(ctx, stages, hailo_python, timeout_s)
    try:
        mode = exec_mode(request.options)
    except UserError as exc:
        if hailo_python is not None:
            raise
        raise Pending(
            f"no Dataflow Compiler here ({exc}); copy {ctx.out} to the compiler's machine and run "
            f"`{resume_command(ctx.out)}` (or pass --hailo-python PYTHON here)"
        ) from None
    with open_executor(request.options.executor) as cases:
        outcome = run_compile(request, mode, cases)
    rows = outcome.rows + outcome.pack_rows
    failed = [r["run_tag"] for r in rows if r["status"] == "failed"]
    outputs = {
        "line": f"{len(outcome.rows)} stage(s) and {len(outcome.pack_rows)} pack(s) ({mode.value}): "
        f"{sum(r['status'] == 'compiled' for r in rows)} compiled, {sum(r['status'] == 'reused' for r in rows)} "
        f"reused, {len(failed)} failed",
        "mode": mode.value,
        "stages": len(outcome.rows),
        "packs": len(outcome.pack_rows),
        "compiled": sum(r["status"] == "compiled" for r in rows),
        "reused": sum(r["status"] == "reused" for r in rows),
        "failed": failed,
        "multi_context_packs": outcome.multi_context_packs,
        "precision": str(request.precision_dir) if request.precision_dir else None,
        "hef_dir": str(Path(HAILO) / ctx.settings.hw_arch),
    }
    if failed or outcome.multi_context_packs:
        what = f"{len(failed)} case(s) failed ({failed[0]})" if failed else "a pack compiled multi-context"
        raise StepFailed(
            f"compile: {what}; see {hef_dir(ctx) / 'compile_summary.tsv'}, then "
            f"`{resume_command(ctx.out)}` (finished stages are reused)",
            outputs,
        )
    log.info(f"build: compile: {outputs['line']}")
    return outputs


def run_bundle(ctx: Context, choice: dict) -> dict:
    """Step 6: ``device/`` and ``device.tar.gz`` (``runtime.bundle``); nothing of calibration,
    HARs or logs, no file over 50 MB (the bundle refuses them)."""
    from ..runtime.bundle import BundleSettings, assemble_bundle, write_bundle_archive

    settings = BundleSettings(
        hw_arch=ctx.settings.hw_arch,
        link=ctx.settings.link,
        job=choice["job"],
        hop_ms=ctx.settings.hop_ms,
        stream_plan=choice["stream_plan"],
        model_name=ctx.model_copy.stem,
    )
    bundle = assemble_bundle(ctx.out / "export", hef_dir(ctx), settings, ctx.out / DEVICE)
    write_bundle_archive(ctx.out / DEVICE, ctx.out / ARCHIVE)
    log.info(f"build: bundle: {len(bundle.files)} file(s) in {ctx.out / DEVICE}, archive {ctx.out / ARCHIVE}")
    hailort = None if bundle.hailort is None else {"major_minor": bundle.hailort.major_minor, "dfc": bundle.hailort.dfc}
    line = f"{len(bundle.files)} file(s) in {DEVICE}/ and {ARCHIVE}"
    return {"line": line, "files": sorted(bundle.files), "archive": ARCHIVE, "hailort": hailort}
