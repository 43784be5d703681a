"""Exports a stage plan to one ONNX file per stage plus ``manifest.json``; reuses unchanged files."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .._version import __version__
from ..errors import UserError
from ..files import write_bytes_atomically
from ..plan.options import PlanOptions, PlanPath, PlanRecord
from ..plan.packing import Packing, pack_stages
from ..plan.stage_plan import StagePlan, step_inputs, step_outputs
from ..plan.stages import Stage
from .graph_check import Violation, check_model
from .hailo_rules import CheckLimits
from .manifest import Manifest, PortEntry, StageEntry, sha256_bytes
from .onnx_graph import OPSET, stage_to_onnx

log = logging.getLogger(__name__)

#: The Hailo rules as confirmed (``hailo_rules.CheckLimits``' defaults).
DEFAULT_LIMITS = CheckLimits()


@dataclasses.dataclass
class ExportResult:
    directory: Path
    manifest: Manifest
    written: list[str]
    reused: list[str]
    violations: list[Violation]


def describe_host_step(step) -> dict[str, Any]:
    """A JSON description of a host step: its kind, tensors and scalar parameters."""
    params = {}
    for field in dataclasses.fields(step):
        value = getattr(step, field.name)
        if isinstance(value, np.ndarray) or field.name in ("input", "output", "a", "b", "outputs", "partials"):
            continue
        params[field.name] = getattr(value, "value", value)
    return {
        "op": type(step).__name__,
        "inputs": list(step_inputs(step)),
        "outputs": list(step_outputs(step)),
        "params": params,
    }


def _label(step) -> str:
    return f"{type(step).__name__}({', '.join(step_inputs(step))} -> {', '.join(step_outputs(step))})"


def _host_neighbours(plan: StagePlan) -> dict[str, tuple[list[str], list[str]]]:
    """For each stage: host steps since the previous stage, and until the next one."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    pending: list[str] = []
    previous: str | None = None
    for step in plan.steps:
        if isinstance(step, Stage):
            out[step.name] = (pending, [])
            if previous is not None:
                out[previous][1].extend(pending)
            pending, previous = [], step.name
        else:
            pending.append(_label(step))
    if previous is not None:
        out[previous][1].extend(pending)
    return out


def _stage_entry(stage: Stage, tile_w: int, file: str, digest: str, host: tuple[list[str], list[str]]) -> StageEntry:
    in_shapes, out_shapes = stage.input_shapes(tile_w), stage.output_shapes(tile_w)
    return StageEntry(
        stage.name,
        file,
        digest,
        stage.role,
        tuple(
            PortEntry(p.name, in_shapes[p.name], p.geometry.halo, p.geometry.stride, p.geometry.span)
            for p in stage.inputs
        ),
        tuple(PortEntry(p.name, out_shapes[p.name]) for p in stage.outputs),
        tuple(host[0]),
        tuple(host[1]),
        stage.macs_per_frame,
        dataclasses.asdict(stage.block) if stage.block else None,
    )


def prepare_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"export folder {out_dir} is an existing file; pass a folder (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create export folder {out_dir}: {exc.strerror}; pass a writable folder") from None


def export_plan(
    plan: StagePlan,
    tile_w: int,
    out_dir: Path,
    model_info: dict[str, Any],
    limits: CheckLimits = DEFAULT_LIMITS,
    report: object = None,
    packing: Packing | None = None,
) -> ExportResult:
    """Writes ``<stage>.onnx`` for every stage and ``manifest.json`` (with the stages' packing
    into HEFs and network groups, default ``pack_stages``) into ``out_dir``.

    A file whose bytes would not change is left alone and counted as reused. Every graph is
    checked against the Hailo rules; the violations are returned (nothing is deleted). Progress
    goes to the module logger; ``report`` is ignored (deprecated: kept until every caller stops
    passing one).
    """
    prepare_folder(out_dir)
    host = _host_neighbours(plan)
    entries, written, reused, violations = [], [], [], []
    stages = plan.stages
    for index, stage in enumerate(stages, 1):
        model = stage_to_onnx(stage, tile_w)
        data = model.SerializeToString(deterministic=True)
        digest, file = sha256_bytes(data), f"{stage.name}.onnx"
        path = out_dir / file
        if path.is_file() and sha256_bytes(path.read_bytes()) == digest:
            reused.append(stage.name)
        else:
            write_bytes_atomically(path, data)
            written.append(stage.name)
        violations += check_model(model, stage.name, limits)
        entries.append(_stage_entry(stage, tile_w, file, digest, host[stage.name]))
        if index % 200 == 0:
            log.info(f"  exported {index}/{len(stages)} stages")
    manifest = Manifest(
        model=model_info,
        plan=PlanRecord(
            plan.path, tile_w, plan.options, plan.expose_internal, OPSET, n_stages=len(stages), rf_window=plan.rf_window
        ),
        stages=tuple(entries),
        host_steps=tuple(describe_host_step(s) for s in plan.steps if not isinstance(s, Stage)),
        created_by=f"convtasnet-hailo {__version__}",
        packing=packing or pack_stages([s.name for s in stages]),
        device_plan=_write_device_plan(plan, out_dir),
    )
    manifest.write(out_dir)
    return ExportResult(out_dir, manifest, written, reused, violations)


def _write_device_plan(plan: StagePlan, out_dir: Path) -> dict[str, str]:
    """The plan itself beside its stage files, for runs without the model (``plan.serialize``)."""
    from ..plan.serialize import ARRAYS_FILE, PLAN_FILE, write_plan

    text, arrays = write_plan(plan, out_dir)
    return {
        "file": PLAN_FILE,
        "sha256": sha256_bytes(text),
        "arrays": ARRAYS_FILE,
        "arrays_sha256": sha256_bytes(arrays),
    }


def export_monolithic(
    model, length: int, out_dir: Path, model_info: dict[str, Any], limits: CheckLimits = DEFAULT_LIMITS
) -> ExportResult:
    """The whole baseline model at one fixed input length (1, 1, length) as a single ONNX file,
    for whole-model compile attempts and speed comparisons; checked by the same rules."""
    import io
    import warnings

    import torch

    if length < model.config.kernel_size:
        raise UserError(f"--length {length} is shorter than one encoder window ({model.config.kernel_size} samples)")
    prepare_folder(out_dir)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python scalars; the shape is fixed
        torch.onnx.export(
            model.eval(),
            torch.zeros(1, 1, length),
            buffer,
            opset_version=OPSET,
            dynamo=False,
            input_names=["wav"],
            output_names=["sources"],
        )
    onnx_model = onnx.load_from_string(buffer.getvalue())
    data = onnx_model.SerializeToString(deterministic=True)
    file = f"convtasnet_monolithic_T{length}.onnx"
    write_bytes_atomically(out_dir / file, data)
    entry = StageEntry(
        "monolithic",
        file,
        sha256_bytes(data),
        "the whole model at a fixed length",
        (PortEntry("wav", (1, 1, length)),),
        (PortEntry("sources", (1, model.config.n_src, length)),),
        (),
        (),
        0,
    )
    record = PlanRecord(
        PlanPath.FULL_CHAIN, None, PlanOptions(fuse=False), opset=OPSET, monolithic=True, n_stages=1, length=length
    )
    manifest = Manifest(model_info, record, (entry,), created_by=f"convtasnet-hailo {__version__}")
    manifest.write(out_dir)
    return ExportResult(out_dir, manifest, ["monolithic"], [], check_model(onnx_model, "monolithic", limits))
