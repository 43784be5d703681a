"""`export`: one ONNX file per stage (static NCHW, H=1) and manifest.json, then the Hailo parser
rules and the packing checked; or, ``monolithic``, the whole model at one input length. With
``stateful_hop_ms`` (causal cLN/cgLN models) the stages run at that hop and the stateful streaming
graph (``export.stateful``) is written beside them, its record carried in manifest.json."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..errors import UserError
from ..export.hailo_rules import CheckLimits
from ..export.verdicts import Verdict, float_only_note, packing_verdict, rules_verdict
from ..guard import check_run_files
from ..model.source import ModelSource
from ..plan.options import DEFAULT_TILE_W, PlanOptions, PlanPath
from ..plan.packing import PackingRequest
from ..plan.passes.rf_windows import DEFAULT_MAX_WIDTH, hop_samples
from ..resources import refuse_unless_fits

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    """`export` of ``source`` into the folder ``out``: ``path``'s stages at ``tile_w`` (default
    ``DEFAULT_TILE_W``) with ``layout`` and ``packing``, checked against ``limits``; with
    ``monolithic`` the whole model at ``length`` samples; with ``rf_hop_ms`` the streaming plan of
    receptive-field spans for hops of that length; with ``stateful_hop_ms`` the stateful streaming
    graph for hops of that length too (the stages' tile width that hop, so either plan streams it)."""

    source: ModelSource
    out: Path
    path: PlanPath = PlanPath.FULL_CHAIN
    tile_w: int | None = None
    layout: PlanOptions = PlanOptions()
    monolithic: bool = False
    length: int | None = None
    limits: CheckLimits = CheckLimits()
    packing: PackingRequest = PackingRequest()
    rf_hop_ms: float | None = None
    stateful_hop_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What was written (``headline``), and the checks' verdicts (none for a float-only plan,
    which ``note`` says is not checked)."""

    out: Path
    headline: str
    verdicts: tuple[Verdict, ...] = ()
    note: str = ""

    @property
    def exit_status(self) -> int:
        return max([0] + [v.exit_status for v in self.verdicts])

    def lines(self) -> list[str]:
        return [self.headline] + ([self.note] if self.note else []) + [line for v in self.verdicts for line in v.lines]


def run(request: Request) -> ExportResult:
    """Staged (one ONNX per stage) or, with ``monolithic``, the whole model at ``length`` samples."""
    if request.monolithic and (request.layout.block_chan or request.tile_w):
        raise UserError("--monolithic exports the whole model: drop --tile-w/--block-chan")
    if not request.monolithic and request.length is not None:
        raise UserError("--length is for --monolithic; staged exports are length-independent")
    if request.monolithic and request.stateful_hop_ms is not None:
        raise UserError("--stateful streams hop by hop: drop --monolithic (the whole model at one length)")
    if request.monolithic:
        return _export_whole(request)
    if request.stateful_hop_ms is not None:
        request = _stateful_request(request)
    layout = request.layout
    if request.rf_hop_ms is not None:  # the streaming plan of receptive-field spans (plan.rf_windows)
        layout = rf_layout(layout, request.source.model.config, request.rf_hop_ms, request.limits.max_width)
    return _export_staged(dataclasses.replace(request, layout=layout))


def stateful_hop(request: Request) -> int:
    """The stateful graph's hop in samples; the model refused (one line) unless causal cLN/cgLN."""
    from ..export.stateful import check_stateful

    config = request.source.model.config
    check_stateful(config, config.stride)  # the model, before the hop's arithmetic
    hop = hop_samples(request.stateful_hop_ms, config.sample_rate, config.stride)
    check_stateful(config, hop)
    return hop


def _stateful_request(request: Request) -> Request:
    """The request with the stages at the stateful graph's hop (``--tile-w`` defaults to it)."""
    config = request.source.model.config
    frames = stateful_hop(request) // config.stride
    if request.rf_hop_ms is not None and request.rf_hop_ms != request.stateful_hop_ms:
        raise UserError(
            f"--stateful {request.stateful_hop_ms:g} and --rf-windows {request.rf_hop_ms:g}: one export streams "
            "one hop; pass the same HOP_MS to both"
        )
    if request.rf_hop_ms is None and request.tile_w not in (None, frames):
        raise UserError(
            f"--stateful {request.stateful_hop_ms:g}: the stages run at the hop ({frames} frames) so the "
            f"export streams with either plan; drop --tile-w {request.tile_w}"
        )
    return request if request.rf_hop_ms is not None else dataclasses.replace(request, tile_w=frames)


def _with_stateful(request: Request, manifest) -> str:
    """Writes the stateful graph into the export folder and its record into the manifest; says so."""
    from ..export.stateful import export_stateful

    record = export_stateful(request.source.model, stateful_hop(request), request.out)
    dataclasses.replace(manifest, stateful=record).write(request.out)
    return (
        f"; stateful graph {record.onnx_file} and its steady form {record.steady_file} (hops of {record.hop} "
        f"samples, {len(record.caches)} caches, {len(record.rings)} rings of hops, "
        f"{record.macs_per_hop:,} MACs per hop)"
    )


def write(result: ExportResult) -> None:
    """Nothing more: the stage files and the manifest are written as the export runs."""


def _said(verdicts: tuple[Verdict, ...]) -> tuple[Verdict, ...]:
    for verdict in verdicts:
        for problem in verdict.problems:
            log.warning(problem)
    return verdicts


def _export_staged(request: Request) -> ExportResult:
    from ..export.exporter import export_plan
    from ..plan import build_plan

    source, out, tile_w = request.source, request.out, request.tile_w
    plan = build_plan(source.model, request.layout, request.path)
    if plan.rf_window and tile_w not in (None, plan.rf_window):
        raise UserError(f"--rf-windows: the spans run at their window width ({plan.rf_window} frames); drop --tile-w")
    check_run_files(
        source.given(),
        [out / "manifest.json", out / "device_plan.json", out / "device_plan.npz"]
        + [out / f"{s.name}.onnx" for s in plan.stages]
        + _stateful_files(request),
    )
    packing = request.packing.packing([s.name for s in plan.stages])
    result = export_plan(
        plan, plan.rf_window or tile_w or DEFAULT_TILE_W, out, source.to_json(), request.limits, packing=packing
    )
    headline = (
        f"{len(plan.stages)} stages at tile_w {result.manifest.tile_w} in {out}: {len(result.written)} "
        f"written, {len(result.reused)} unchanged and reused (same sha256)"
    )
    if request.stateful_hop_ms is not None:
        headline += _with_stateful(request, result.manifest)
    if plan.float_only_options:
        return ExportResult(out, headline, note=float_only_note(plan.float_only_options))
    return ExportResult(
        out,
        headline,
        _said((rules_verdict(result.violations, "check"), packing_verdict(result.manifest.packing, "check"))),
    )


def _stateful_files(request: Request) -> list[Path]:
    from ..export.stateful import RECORD_NAME, stateful_file_name

    if request.stateful_hop_ms is None:
        return []
    hop = stateful_hop(request)
    return [request.out / name for name in (RECORD_NAME, stateful_file_name(hop), stateful_file_name(hop, steady=True))]


def _export_whole(request: Request) -> ExportResult:
    """The whole model at one input length (for compile attempts and speed comparisons)."""
    from ..export.exporter import export_monolithic

    source, out, length = request.source, request.out, request.length
    if length is None:
        raise UserError("--monolithic needs --length T (the fixed input length in samples)")
    check_run_files(source.given(), [out / "manifest.json", out / f"convtasnet_monolithic_T{length}.onnx"])
    refuse_unless_fits(
        source.model.config.forward_bytes(length),
        f"--monolithic --length {length} (the export traces the whole model at that length)",
        "pass a shorter --length",
    )
    result = export_monolithic(source.model, length, out, source.to_json(), request.limits)
    headline = f"wrote {out / result.manifest.stages[0].file} (whole model at {length} samples)"
    return ExportResult(out, headline, _said((rules_verdict(result.violations, "monolithic check"),)))


def rf_layout(layout: PlanOptions, config, hop_ms: float, max_width: int | None) -> PlanOptions:
    """``layout`` with receptive-field windows for hops of ``hop_ms`` (a whole number of strides)."""
    hop = hop_samples(hop_ms, config.sample_rate, config.stride)
    return dataclasses.replace(layout, rf_hop_frames=hop // config.stride, rf_max_width=max_width or DEFAULT_MAX_WIDTH)
