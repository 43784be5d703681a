"""``hailo_emulator``: runs each stage's HAR through the Dataflow Compiler's inference contexts
(``--context fp_optimized|quantized``), so quantized parity can be checked without hardware.

Documented surface (docs/hailo_facts.md, "Compiler API"): ``ClientRunner(har=path)``,
``runner.infer_context(InferenceContext.SDK_QUANTIZED)`` and ``runner.infer(ctx, x_nhwc)``.
Needs hailo_sdk_client in this Python (the emulator runs in-process).

Ports are bound by name through the runner's HN (``get_hn_dict()``): inputs are fed keyed by the
input layer whose ``original_names`` hold the port's ONNX name, and the outputs, which come back
in the HN's ``net_params.output_layers_order`` (unconfirmed: the order the Model Zoo's
``hn_editor`` keeps for the outputs), go to the port whose ONNX node the layer holds
(``backends.streams``), never by position.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..dfc.driver import import_sdk
from ..dfc.manifest import stage_artifacts
from ..errors import UserError
from ..hailo.layout import input_layer_feed, nchw_to_nhwc, nhwc_to_nchw
from ..plan.onnx_names import port_original_names
from ..plan.options import refuse_float_only
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from .base import Backend, register_backend
from .streams import StreamBindingError, bind_ports

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
            outputs = _output_layers(plan.stage(stage), runner.get_hn_dict(), path.name)
            self._runners[stage] = (runner, self._stack.enter_context(runner.infer_context(context)), outputs)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        runner, ctx, outputs = self._runners[stage.name]
        arrays = [nchw_to_nhwc(inputs[p.name]) for p in stage.inputs]
        hn = runner.get_hn_dict() if len(arrays) > 1 else {}
        try:
            feed = input_layer_feed(hn, hn.get("name", stage.name), [p.name for p in stage.inputs], arrays)
        except ValueError as exc:
            raise StreamBindingError(
                f"stage {stage.name}: {exc}; recompile this export with `convtasnet-hailo compile`"
            ) from None
        out = runner.infer(ctx, feed)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return {port.name: nhwc_to_nchw(np.asarray(outs[outputs[port.name]], np.float32)) for port in stage.outputs}

    def _close(self) -> None:
        self._stack.close()
        self._runners.clear()


def _output_layers(stage: Stage, hn: dict, har: str) -> dict[str, int]:
    """Port -> the index of its layer in the HN's ``output_layers_order`` (what ``infer`` returns)."""
    order = list(hn.get("net_params", {}).get("output_layers_order") or [])
    layers = hn.get("layers", {})
    originals = {name: tuple(layers.get(name, {}).get("original_names") or ()) for name in order}
    wanted = port_original_names(stage)
    bound = bind_ports(
        f"stage {stage.name} ({har})", "output", {p.name: wanted[p.name] for p in stage.outputs}, originals
    )
    return {port: order.index(layer) for port, layer in bound.items()}
