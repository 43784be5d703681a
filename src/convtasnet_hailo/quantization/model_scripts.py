"""The model scripts `noise` writes: per stage, the DFC lines that do what the emulation did
(``dfc.model_script.optimization_lines``) and a ``quantization_param(<layer>, ...)`` per advised
mode or pinned range (layers named by their ONNX node; `compile --precision DIR` maps them to the
parsed names)."""

from __future__ import annotations

from pathlib import Path

from ..files import write_text_atomically
from ..hailo import quant_scheme as qs
from ..hailo.emulation import Precision
from ..hailo.integer_ops import layer_name
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage


def stage_script_lines(stage: Stage, precision: Precision, scheme: qs.Scheme, ranges=None) -> list[str]:
    """One stage's model-script lines: the optimizations the emulation used, a
    ``quantization_param`` per layer not a8_w8, and with headroom a ``force_range_out`` per layer
    output (the activation's, where a conv and its activation are one layer)."""
    from ..dfc.model_script import optimization_lines, precision_line, range_line
    from ..hailo.emulation import fused_activations

    names = [layer_name(stage, index, op) for index, op in enumerate(stage.ops)]
    lines = optimization_lines(scheme.equalization, scheme.bias_correction, scheme.clip_percentile, names)
    fused = fused_activations(stage) if scheme.fuse_activations else {}
    for index, op in enumerate(stage.ops):
        name = layer_name(stage, index, op)
        mode = precision.modes.get(name, precision.default)
        if mode != qs.DEFAULT_MODE:
            lines.append(precision_line(name, mode))
        if ranges is not None and scheme.headroom != 1.0 and index not in fused:
            lo, hi = ranges[op.output]
            lines.append(range_line(name, min(lo, 0.0), max(hi, 0.0)))
    return lines


def write_model_scripts(
    directory: Path, plan: StagePlan, precision: Precision, scheme: qs.Scheme, ranges=None
) -> dict[str, Path]:
    """``<stage>.alls`` per stage (``stage_script_lines``; layers named by their ONNX node,
    `compile --precision` maps them to the parsed layers)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage in plan.stages:
        paths[stage.name] = directory / f"{stage.name}.alls"
        write_text_atomically(
            paths[stage.name], "".join(line + "\n" for line in stage_script_lines(stage, precision, scheme, ranges))
        )
    return paths
