"""The build, step by step (``record.STEPS``): each step's inputs hashed and recorded in
``build.json`` with its state, so ``--resume`` skips every step whose inputs and products are
unchanged and reruns the rest; the compile reuses every stage it finished (its own input hashes).
A step that fails is recorded as failed (its error kept) before the error goes on."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..export.hailo_rules import CheckLimits
from .device import Pending, StepFailed, resume_command, run_bundle, run_compile_step
from .record import RECORD_FILE, STEPS, BuildRecord, BuildSettings, StepState, folder_hash, inputs_hash, read_record
from .steps import Context, run_choose, run_export, run_noise, run_split

log = logging.getLogger(__name__)

MODEL_DIR = "model"


@dataclasses.dataclass(frozen=True)
class BuildRun:
    """One call of `build`: the folder, the settings (None with ``resume``: build.json's), the
    settings given beside ``--resume`` (each must agree with the record), the compiler's
    interpreter and the compile's timeout per stage."""

    out: Path
    settings: BuildSettings | None
    resume: bool = False
    given: tuple[tuple[str, object], ...] = ()
    hailo_python: str | None = None
    timeout_s: float | None = None
    strict: bool = False


@dataclasses.dataclass(frozen=True)
class BuildOutcome:
    """The record as the build left it, where it stopped (None: every step done), and the line that
    says what to do next (a pending compile's one command, a failure's fix)."""

    out: Path
    record: BuildRecord
    stopped_at: str | None
    next_line: str | None
    warnings: tuple[str, ...]
    strict: bool

    @property
    def exit_status(self) -> int:
        return 1 if self.stopped_at is not None or (self.strict and self.warnings) else 0


def _start(run: BuildRun) -> tuple[BuildRecord, Context]:
    """A new build folder (the model copied into it), or the recorded one to resume."""
    from ..model.source import checkpoint_source

    out = run.out
    if run.resume:
        record = read_record(out)
        for name, value in run.given:
            recorded = getattr(record.settings, name)
            if value != recorded:
                raise UserError(
                    f"--{name.replace('_', '-')} {value} disagrees with the build in {out} ({recorded}, "
                    f"{RECORD_FILE}); drop it to resume, or start a new build with another --out"
                )
        copy = out / MODEL_DIR / record.model["file"]
        source = checkpoint_source(str(copy))
        if source.sha256 != record.model["sha256"]:
            raise UserError(f"{copy} changed since the build began (sha256); start a new build")
        return record, Context(out, record.settings, source, copy)
    if (out / RECORD_FILE).exists():
        raise UserError(f"{out} holds a build ({RECORD_FILE}); pass --resume {out} to finish it, or another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; pass a new folder")
    original = checkpoint_source(run.settings.model)
    copy = out / MODEL_DIR / Path(original.path).name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(original.path, copy)
    source = checkpoint_source(str(copy))
    model = {
        "name": Path(original.path).stem,
        "file": copy.name,
        "given": run.settings.model,
        "sha256": source.sha256,
        "config": source.config.to_json(),
    }
    record = BuildRecord(run.settings, model)
    record.write(out)
    return record, Context(out, run.settings, source, copy)


def _step(record: BuildRecord, ctx: Context, name: str, inputs: str, work: Callable[[], dict]) -> dict:
    """One step: skipped when done with these inputs and its products unchanged; else run, its
    state recorded (done, failed with its error, or pending) and build.json written."""
    number = f"[{STEPS.index(name) + 1}/{len(STEPS)}] {name}"
    if record.done(name, inputs) and _products_intact(ctx, name, record.outputs(name)):
        log.info(f"build: {number}: done before with the same inputs, skipped")
        return record.outputs(name)
    log.info(f"build: {number} ...")
    started = time.perf_counter()
    seconds = lambda: round(time.perf_counter() - started, 1)  # noqa: E731
    try:
        outputs = work()
    except Pending as exc:
        record.steps[name] = StepState("pending", inputs, seconds(), str(exc))
        record.write(ctx.out)
        raise
    except StepFailed as exc:
        record.steps[name] = StepState("failed", inputs, seconds(), str(exc), exc.outputs)
        record.write(ctx.out)
        raise
    except (UserError, KeyboardInterrupt) as exc:
        record.steps[name] = StepState("failed", inputs, seconds(), str(exc) or type(exc).__name__)
        record.write(ctx.out)
        raise
    record.steps[name] = StepState("done", inputs, seconds(), outputs.get("line", ""), outputs)
    record.write(ctx.out)
    log.info(f"build: {number}: done in {seconds():.1f} s")
    return outputs


def _products_intact(ctx: Context, name: str, outputs: dict) -> bool:
    """A finished step's products as it left them (the hash it recorded of its folder)."""
    folders = {
        "export": ctx.out / "export",
        "split": ctx.out / "calib" / "audio",
        "noise": ctx.out / "noise" / "model_scripts",
    }
    if name == "compile":
        return (ctx.out / outputs.get("hef_dir", "-") / "compile_manifest.json").is_file()
    if name in ("report", "bundle"):
        return name != "bundle" or (ctx.out / "device" / "bundle.json").is_file()
    return name not in folders or folder_hash(folders[name]) == outputs.get("artifact")


def run_build(run: BuildRun) -> BuildOutcome:
    """Every step in order; the report is written wherever the build stops."""
    record, ctx = _start(run)
    stopped, next_line, warnings = None, None, ()
    try:
        warnings = _steps_to_compile(record, ctx, run)
        if run.strict and warnings:
            stopped, next_line = "noise", f"--strict: {warnings[0]}; no compile"
    except Pending as exc:
        stopped, next_line = "compile", str(exc)
    except StepFailed as exc:
        stopped, next_line = "compile", str(exc)
    if stopped is None:
        compiled = record.outputs("compile")
        inputs = inputs_hash(record.outputs("export")["artifact"], compiled, _compile_manifest_hash(ctx))
        _step(record, ctx, "bundle", inputs, lambda: run_bundle(ctx, record.outputs("choose")))
    _step(record, ctx, "report", inputs_hash(time.time()), lambda: _report(record, ctx))
    return BuildOutcome(ctx.out, record, stopped, next_line, tuple(warnings), run.strict)


def _steps_to_compile(record: BuildRecord, ctx: Context, run: BuildRun) -> list[str]:
    """Steps 1 to 5; the precision advice's warnings (said loudly; the caller stops with --strict)."""
    settings, sha = ctx.settings, record.model["sha256"]
    limits = dataclasses.asdict(ctx.limits)
    choose_in = inputs_hash(sha, settings.hw_arch, settings.job, settings.hop_ms, settings.link, limits)
    choice = _step(record, ctx, "choose", choose_in, lambda: run_choose(ctx))
    export = _step(record, ctx, "export", inputs_hash(sha, choice, limits), lambda: run_export(ctx, choice))
    split_in = inputs_hash(settings.calib, settings.heldout_share, settings.seed, ctx.source.config.to_json())
    split = _step(record, ctx, "split", split_in, lambda: run_split(ctx))
    noise_in = inputs_hash(
        export["artifact"], split["artifact"], settings.target_loss_db, settings.calib_count, export["tile_w"]
    )
    noise = _step(record, ctx, "noise", noise_in, lambda: run_noise(ctx, export["tile_w"], split))
    for warning in noise["warnings"]:
        log.warning(f"build: WARNING: {warning}")
    if run.strict and noise["warnings"]:
        return noise["warnings"]
    compile_in = inputs_hash(
        export["artifact"], split["artifact"], noise["artifact"], settings.hw_arch, settings.calib_count
    )
    _step(
        record,
        ctx,
        "compile",
        compile_in,
        lambda: run_compile_step(ctx, export["stages"], run.hailo_python, run.timeout_s),
    )
    return noise["warnings"]


def _compile_manifest_hash(ctx: Context) -> str:
    from ..files import sha256_file

    path = ctx.out / "hailo" / ctx.settings.hw_arch / "compile_manifest.json"
    return sha256_file(path) if path.is_file() else ""


def _report(record: BuildRecord, ctx: Context) -> dict:
    from .report import write_report

    return write_report(record, ctx)


__all__ = ["BuildOutcome", "BuildRun", "CheckLimits", "resume_command", "run_build"]
