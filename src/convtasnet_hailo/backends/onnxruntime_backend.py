"""``onnxruntime``: runs the exported ONNX files of each stage, one session per stage.

The export folder must hold the plan's stages for the executor's tile width; every file is
checked against the manifest (sha256) and against the plan (the file's bytes are what the plan's
stage exports to), so an edited, stale or foreign export is an error naming the stage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import UserError
from ..export.manifest import Manifest, check_stage_ports, read_manifest, sha256_bytes, verify_stage_file
from ..plan.options import PlanOptions
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from .base import Backend, register_backend

log = logging.getLogger(__name__)


def default_threads() -> int | None:
    """``OMP_NUM_THREADS`` when set, so that onnxruntime uses the thread count torch uses (torch
    reads the same variable); None lets onnxruntime pick (one per core)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


_SHARED_ARENA = False


def _shared_arena() -> None:
    """One CPU arena for every session of the process (registered once with ORT's environment)."""
    global _SHARED_ARENA
    if not _SHARED_ARENA:
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(memory, None)
        _SHARED_ARENA = True


def session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One arena per session would keep every stage's peak buffers alive (gigabytes with channel
    # blocks); no arena at all makes every run allocate and page-fault its outputs afresh (a large
    # share of the stage time). One arena shared by all sessions does neither. Figures:
    # docs/benchmarks.md, "Host path decisions".
    _shared_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    # Idle pool threads of every session otherwise spin-wait: with hundreds of sessions on a
    # 2-core machine the load average reached the hundreds and the run slowed several-fold.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


@register_backend("onnxruntime")
class OnnxRuntimeBackend(Backend):
    """``export_dir`` holds a manifest for one tile width, or ``tile<W>/`` subfolders for several.
    With ``scratch`` instead, preparing for a plan first exports it into ``scratch/tile<W>``
    (``model_info`` goes into its manifest), and only there."""

    name = "onnxruntime"

    def __init__(
        self,
        export_dir: str | Path | None = None,
        threads: int | None = None,
        scratch: str | Path | None = None,
        model_info: dict | None = None,
    ) -> None:
        if (export_dir is None) == (scratch is None):
            raise UserError(
                "backend onnxruntime needs exported stages: pass --export-dir DIR (made by `convtasnet-hailo export`)"
            )
        self.export_dir = Path(export_dir if export_dir is not None else scratch)
        self.exports = scratch is not None
        self.model_info = model_info or {}
        self._exported: dict[int, tuple] = {}
        self.batching = "symbolic"
        self.threads = threads if threads is not None else default_threads()
        self._sessions: dict[str, ort.InferenceSession] = {}

    def _export_for(self, tile_w: int) -> tuple[Path, Manifest]:
        for directory in (self.export_dir, self.export_dir / f"tile{tile_w}"):
            if (directory / "manifest.json").is_file():
                manifest = read_manifest(directory)
                if manifest.plan.tile_w == tile_w:
                    return directory, manifest
        raise UserError(
            f"no export for tile_w {tile_w} in {self.export_dir} (looked for manifest.json there and "
            f"in tile{tile_w}/); run `convtasnet-hailo export --tile-w {tile_w}` or pass its --tile-w"
        )

    def _prepare(self, plan: StagePlan, tile_w: int) -> None:
        """Opens one session per stage, after checking the export against the plan (exporting it
        first into the scratch folder when that is what the backend was given)."""
        exported = (plan.config, tuple(s.name for s in plan.stages))
        if self.exports and self._exported.get(tile_w) != exported:
            from ..export.exporter import export_plan

            self._exported[tile_w] = exported
            result = export_plan(plan, tile_w, self.export_dir / f"tile{tile_w}", self.model_info)
            log.info(f"exported {len(result.manifest.stages)} stages at tile_w {tile_w} to {result.directory}")
        directory, manifest = self._export_for(tile_w)
        exported, wanted = manifest.plan.options, plan.options
        if exported.block_chan != wanted.block_chan:
            raise UserError(
                f"the export in {directory} used block_chan {exported.block_chan}, the plan "
                f"{wanted.block_chan}: pass the same --block-chan or re-export"
            )
        if _cut(exported, manifest.plan.expose_internal) != _cut(wanted, plan.expose_internal):
            raise UserError(
                f"the export in {directory} holds the {_describe(exported, manifest.plan.expose_internal)} "
                f"plan, this run needs the {_describe(wanted, plan.expose_internal)} one: re-export with the "
                "same options (parity exports expose internal tensors; `export` does not)"
            )
        from_this_export = plan.export_dir is not None and Path(plan.export_dir).resolve() == Path(directory).resolve()
        self.batching = "symbolic" if _has_onnx() else "per_tile"
        sessions = {}
        for stage in plan.stages:
            entry = manifest.stage(stage.name)
            path = verify_stage_file(directory, entry)
            if not from_this_export:  # a plan built from a model: its stage must be this file's
                _check_same_stage(stage, tile_w, entry.sha256, path)
            session = ort.InferenceSession(
                _session_bytes(path, self.batching), session_options(self.threads), providers=["CPUExecutionProvider"]
            )
            check_stage_ports(entry, path, _ports(session.get_inputs()), _ports(session.get_outputs()))
            sessions[stage.name] = session
        self._sessions = sessions

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._sessions.get(stage.name)
        if session is None:
            raise UserError(f"backend onnxruntime was not prepared for stage {stage.name}")
        feeds = {port.name: np.ascontiguousarray(inputs[port.name], dtype=np.float32) for port in stage.inputs}
        names = [p.name for p in stage.outputs]
        if self.batching == "symbolic":
            return dict(zip(names, session.run(names, feeds), strict=False))
        rows = [
            session.run(names, {k: v[i : i + 1] for k, v in feeds.items()})
            for i in range(len(next(iter(feeds.values()))))
        ]
        return {name: np.concatenate([row[k] for row in rows]) for k, name in enumerate(names)}

    def stats(self) -> dict:
        return {"batching": self.batching}

    def _close(self) -> None:
        self._sessions.clear()


def _cut(options: PlanOptions, exposed: bool) -> tuple[bool, ...]:
    return (
        options.fuse,
        exposed,
        options.device_norms,
        options.gln_in_stages,
        options.halo_edges,
        options.skip_sums_in_stages,
    )


def _describe(options: PlanOptions, exposed: bool) -> str:
    return (
        ("fused" if options.fuse else "unfused (--no-fuse)")
        + (", internal tensors exposed" if exposed else "")
        + (", norms on the device" if options.device_norms else "")
        + (", gLN inside the stages" if options.gln_in_stages else "")
        + (", halo edges" if options.halo_edges else "")
        + (", skip sums in the stages" if options.skip_sums_in_stages else "")
    )


def _ports(values) -> list[tuple[str, tuple]]:
    """(name, shape) of a session's inputs or outputs (a symbolic dimension is a string or None)."""
    return [(v.name, tuple(v.shape)) for v in values]


def _has_onnx() -> bool:
    """Whether the ONNX graph library is installed (the device side runs without it)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _session_bytes(path: Path, batching: str) -> bytes:
    """The stage file for a session: its batch dimension made symbolic (one call per stage for every
    tile), or, without the ONNX library to rewrite it, as exported (batch 1: one call per tile)."""
    if batching == "per_tile":
        return path.read_bytes()
    from ..export.graph_check import load_stage
    from ..export.onnx_graph import with_symbolic_batch

    return with_symbolic_batch(load_stage(path, path.stem)).SerializeToString()  # no external data read


def _check_same_stage(stage: Stage, tile_w: int, recorded: str, path: Path) -> None:
    from ..export.onnx_graph import stage_to_onnx

    if recorded != sha256_bytes(stage_to_onnx(stage, tile_w).SerializeToString(deterministic=True)):
        raise UserError(
            f"stage {stage.name}: {path} is not this model's stage (other weights or plan); re-export from this model"
        )
