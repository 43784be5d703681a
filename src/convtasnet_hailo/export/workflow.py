"""The `export` and `check` commands' work, with their exit statuses (0 clean, 1 rule violations)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..guard import check_run_files
from ..resources import refuse_unless_fits
from ..plan.builder import PlanOptions, PlanPath, float_only_options_of
from ..plan.rf_windows import DEFAULT_MAX_WIDTH, hop_samples
from ..model.source import ModelSource
from .graph_check import Violation
from ..plan.packing import Packing, PackingRequest
from .hailo_rules import CheckLimits

DEFAULT_TILE_W = 256


def report_violations(violations: list[Violation], what: str, report: Callable[[str], None] = print) -> int:
    for violation in violations:
        report(str(violation))
    if violations:
        stages = len({v.stage for v in violations})
        print(f"{what}: {len(violations)} rule violation(s) in {stages} stage(s); the Hailo parser would reject them",
              file=sys.stderr)
        return 1
    report(f"{what}: every graph passes the Hailo parser rules")
    return 0


def export_staged(source: ModelSource, out: Path, path: PlanPath, tile_w: int | None, layout: PlanOptions,
                  limits: CheckLimits, packing_request: PackingRequest = PackingRequest(),
                  report: Callable[[str], None] = print) -> int:
    from .exporter import export_plan

    plan = layout.build(source.model, path)
    if plan.rf_window and tile_w not in (None, plan.rf_window):
        raise UserError(f"--rf-windows: the spans run at their window width ({plan.rf_window} frames); drop --tile-w")
    check_run_files(source.given(), [out / "manifest.json"] + [out / f"{s.name}.onnx" for s in plan.stages])
    packing = packing_request.packing([s.name for s in plan.stages])
    result = export_plan(plan, plan.rf_window or tile_w or DEFAULT_TILE_W, out, source.to_json(), limits,
                         report=report, packing=packing)
    report(f"{len(plan.stages)} stages at tile_w {result.manifest.tile_w} in {out}: {len(result.written)} written, "
           f"{len(result.reused)} unchanged and reused (same sha256)")
    if plan.float_only_options:
        report(float_only_note(plan.float_only_options))
        return 0
    return max(report_violations(result.violations, "check", report),
               report_packing(result.manifest.packing, "check", report))


def float_only_note(options: tuple[str, ...]) -> str:
    return (f"check: built with {' and '.join(options)}, for the float backends (onnxruntime, torch_proxy): not "
            "checked against the Hailo parser rules or runtime limits (compile refuses it)")


def export_whole(source: ModelSource, out: Path, length: int | None, limits: CheckLimits,
                 report: Callable[[str], None] = print) -> int:
    """The whole model at one input length (for compile attempts and speed comparisons)."""
    from .exporter import export_monolithic

    if length is None:
        raise UserError("--monolithic needs --length T (the fixed input length in samples)")
    check_run_files(source.given(), [out / "manifest.json", out / f"convtasnet_monolithic_T{length}.onnx"])
    refuse_unless_fits(source.model.config.forward_bytes(length), f"--monolithic --length {length} (the export "
                       "traces the whole model at that length)", "pass a shorter --length")
    result = export_monolithic(source.model, length, out, source.to_json(), limits)
    report(f"wrote {out / result.manifest.stages[0].file} (whole model at {length} samples)")
    return report_violations(result.violations, "monolithic check", report)


def report_packing(packing: Packing | None, what: str, report: Callable[[str], None] = print) -> int:
    """Exit status 1 when the export's packing breaks a limit (network groups per HEF, networks
    per group) or cannot run in its execution mode. More network groups than a device holds at
    once is said, not failed: hailo_runtime runs such a plan in configuration windows, at the
    cost the message states."""
    if packing is None:
        report(f"{what}: no packing recorded (an export from before packing); re-export to check the runtime limits")
        return 0
    problems = packing.hard_violations()
    for problem in problems:
        print(f"{what}: {problem}", file=sys.stderr)
    note = packing.window_note()
    if note:
        report(f"{what}: {note}")
    elif not problems:
        report(f"{what}: {len(packing.hefs)} HEF(s), {len(packing.network_groups)} network group(s) within HailoRT's "
               f"limits ({packing.limits.network_groups_per_device} network groups per device), execution mode "
               f"{packing.mode.value}")
    return 1 if problems else 0


def check_folder(export_dir: Path, limits: CheckLimits, report: Callable[[str], None] = print) -> int:
    """The Hailo parser rules on every stage file, and the packing against the runtime limits."""
    from .graph_check import check_export
    from .manifest import check_coverage, read_manifest

    manifest = read_manifest(export_dir)
    check_coverage(manifest, export_dir)
    options = float_only_options_of(manifest.plan)
    if options:
        report(float_only_note(options))
        return 0
    rules = report_violations(check_export(export_dir, limits), f"check {export_dir}", report)
    return max(rules, report_packing(manifest.packing, f"check {export_dir}", report))


def rf_layout(layout: PlanOptions, config, hop_ms: float, max_width: int | None) -> PlanOptions:
    """``layout`` with receptive-field windows for hops of ``hop_ms`` (a whole number of strides)."""
    import dataclasses

    hop = hop_samples(hop_ms, config.sample_rate, config.stride)
    return dataclasses.replace(layout, rf_hop_frames=hop // config.stride, rf_max_width=max_width or DEFAULT_MAX_WIDTH)


def export_command(source: ModelSource, out: Path, path: PlanPath, tile_w: int | None, layout: PlanOptions,
                   monolithic: bool, length: int | None, limits: CheckLimits,
                   packing_request: PackingRequest = PackingRequest(), report: Callable[[str], None] = print,
                   rf_hop_ms: float | None = None) -> int:
    """Staged (one ONNX per stage) or, with ``monolithic``, the whole model at ``length`` samples."""
    if monolithic and (layout.block_chan or tile_w):
        raise UserError("--monolithic exports the whole model: drop --tile-w/--block-chan")
    if not monolithic and length is not None:
        raise UserError("--length is for --monolithic; staged exports are length-independent")
    if monolithic:
        return export_whole(source, out, length, limits, report)
    if rf_hop_ms is not None:  # the streaming plan of receptive-field spans (plan.rf_windows)
        layout = rf_layout(layout, source.model.config, rf_hop_ms, limits.max_width)
    return export_staged(source, out, path, tile_w, layout, limits, packing_request, report)
