"""``hailo_emulator``: runs each stage's HAR through the Dataflow Compiler's inference contexts
(``--context fp_optimized|quantized``), so quantized parity can be checked without hardware.

Documented surface (docs/hailo_facts.md, "Compiler API"): ``ClientRunner(har=path)``,
``runner.infer_context(InferenceContext.SDK_QUANTIZED)`` and ``runner.infer(ctx, x_nhwc)``.
Needs hailo_sdk_client in this Python (the emulator runs in-process).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..compile.driver import import_sdk
from ..compile.manifest import stage_artifacts
from ..hailo.layout import input_layer_feed, nchw_to_nhwc, nhwc_to_nchw
from ..errors import UserError
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from ..plan.options import refuse_float_only
from .base import Backend, register_backend

CONTEXTS = {"native": "SDK_NATIVE", "fp_optimized": "SDK_FP_OPTIMIZED", "quantized": "SDK_QUANTIZED"}


def har_paths(har_dir: Path, plan: StagePlan) -> dict[str, Path]:
    """stage -> optimized HAR (``compile.manifest.stage_artifacts``)."""
    return stage_artifacts(har_dir, [s.name for s in plan.stages], "har")


@register_backend("hailo_emulator")
class HailoEmulatorBackend(Backend):
    name = "hailo_emulator"

    def __init__(self, hef_dir: str | Path | None = None, context: str = "quantized") -> None:
        if hef_dir is None:
            raise UserError("backend hailo_emulator needs optimized HARs: pass --hef-dir DIR (from `compile`)")
        if context not in CONTEXTS:
            raise UserError(f"--context {context!r}: choose one of {', '.join(CONTEXTS)}")
        self.har_dir, self.context = Path(hef_dir), context
        self.sdk = import_sdk()
        self._stack = contextlib.ExitStack()
        self._runners: dict[str, tuple] = {}

        self.quantized = context == "quantized"

    def _prepare(self, plan: StagePlan, tile_w: int) -> None:
        self._close()
        refuse_float_only(plan.float_only_options, f"--backend {self.name}")
        context = getattr(self.sdk.InferenceContext, CONTEXTS[self.context])
        for stage, path in har_paths(self.har_dir, plan).items():
            runner = self.sdk.ClientRunner(har=str(path))
            self._runners[stage] = (runner, self._stack.enter_context(runner.infer_context(context)))

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        runner, ctx = self._runners[stage.name]
        arrays = [nchw_to_nhwc(inputs[p.name]) for p in stage.inputs]
        hn = runner.get_hn_dict() if len(arrays) > 1 else {}
        feed = input_layer_feed(hn, hn.get("name", stage.name), [p.name for p in stage.inputs], arrays)
        out = runner.infer(ctx, feed)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return {port.name: nhwc_to_nchw(np.asarray(o, np.float32)) for port, o in zip(stage.outputs, outs)}

    def _close(self) -> None:
        self._stack.close()
        self._runners.clear()
