"""Model scripts (.alls): the DFC's per-network compile and quantization directives.

A variant is a named set of directive lines (docs/hailo_facts.md, "Model script
commands"); grids sweep over variants.
"""

from __future__ import annotations

import dataclasses

#: Directive families a variant may set; each maps to the .alls command of that name.
DIRECTIVES = (
    "allocator_param",
    "resources_param",
    "performance_param",
    "context_switch_param",
    "quantization_param",
    "model_optimization_flavor",
    "model_optimization_config",
    "post_quantization_optimization",
    "pre_quantization_optimization",
)


@dataclasses.dataclass(frozen=True)
class ScriptVariant:
    """A named model-script variant: ``lines`` are complete .alls commands, e.g.
    ``allocator_param(timeout=25m)``."""

    name: str
    lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in self.lines:
            command = line.split("(", 1)[0].strip()
            if "(" not in line or not line.rstrip().endswith(")") or command not in DIRECTIVES:
                raise ValueError(
                    f"model script variant {self.name!r}: {line!r} is not one of {', '.join(DIRECTIVES)}(...)"
                )

    def text(self, optimization_level: int | None = None) -> str:
        """The .alls text. Without a GPU the DFC drops to optimization level 0 anyway."""
        lines = list(self.lines)
        if optimization_level is not None and not any(x.startswith("model_optimization_flavor") for x in lines):
            lines.append(f"model_optimization_flavor(optimization_level={optimization_level})")
        return "\n".join(lines) + ("\n" if lines else "")


DEFAULT_VARIANT = ScriptVariant("default")


def stated(text: str, calibset_size: int) -> str:
    """``text`` with what the DFC would otherwise decide unasked written out (docs/hailo_facts.md,
    "Model optimization"): ``calibset_size`` is the number of calibration tiles actually passed
    (the DFC's default is 64, whatever it was given), and ``compression_level=0``, since the DFC
    may otherwise compress some weights to 4 bits on a GPU machine ("Model might have implicit
    compression"). A line the variant already has for either is kept as it is."""
    lines = [line for line in text.splitlines() if line.strip()]
    flavor = [k for k, line in enumerate(lines) if line.startswith("model_optimization_flavor(")]
    if not flavor:
        lines.append("model_optimization_flavor(compression_level=0)")
    elif "compression_level" not in lines[flavor[0]]:
        lines[flavor[0]] = lines[flavor[0]].rstrip()[:-1] + ", compression_level=0)"
    if not any(line.startswith("model_optimization_config(calibration") for line in lines):
        lines.append(f"model_optimization_config(calibration, calibset_size={calibset_size})")
    return "\n".join(lines) + "\n"


def layer_list(layers: list[str]) -> str:
    """``[l1, l2]``: the listed-layers argument, each layer once, in order."""
    return "[" + ", ".join(dict.fromkeys(layers)) + "]"


def optimization_lines(
    equalization: bool, bias_correction: bool, clip_percentile: float | None, layers: list[str] = ()
) -> list[str]:
    """The DFC lines that do what the ``hailo_quant`` emulation did (docs/hailo_facts.md, "Model
    optimization": the Model Zoo's alls syntax). Fine-tuning (QFT, optimization level 2) is not
    emulated, so it is disabled: the device then computes what the emulation predicts. Clipping
    names its ``layers`` (every layer of the stage, as the emulation clips them all), since the
    Model Zoo's ``activation_clipping`` lines always list theirs (``layers=[conv9]``)."""
    lines = [f"pre_quantization_optimization(equalization, policy={'enabled' if equalization else 'disabled'})"]
    if clip_percentile is not None:
        if not layers:
            raise ValueError("activation_clipping needs the layers it clips")
        low = round(100.0 - clip_percentile, 6)
        lines.append(
            f"pre_quantization_optimization(activation_clipping, layers={layer_list(list(layers))}, "
            f"mode=percentile, clipping_values=[{low:g}, {clip_percentile:g}])"
        )
    lines.append(
        f"post_quantization_optimization(bias_correction, policy={'enabled' if bias_correction else 'disabled'})"
    )
    lines.append("post_quantization_optimization(finetune, policy=disabled)")
    return lines


def range_line(layer: str, lo: float, hi: float) -> str:
    """Pins a layer's output range (``force_range_out``; docs/hailo_facts.md, "Quantization scheme"),
    in the listed form public scripts use: ``quantization_param([l1, l2], force_range_out=[lo, hi])``."""
    return f"quantization_param([{layer}], force_range_out=[{lo:.6g}, {hi:.6g}])"


def precision_line(layer: str, mode: str) -> str:
    return f"quantization_param({layer}, precision_mode={mode})"


#: Directive families of the joint script a joined pack loads after ``join`` and before
#: ``compile()``, as the Model Zoo's multi-network scripts hold them (``cfg/multi-networks/*.alls``:
#: ``context_switch_param``, ``allocator_param``, ``performance_param``; ``resources_param`` is the
#: same kind, a compile-time resource directive).
JOINT_DIRECTIVES = ("allocator_param", "resources_param", "performance_param")
#: One context for a pack: ``activated_packs`` runs one network of a pack at a time, which HailoRT
#: allows only in a single-context group (docs/hailo_facts.md, "Runtime limits"). The Model Zoo's
#: joint scripts write ``context_switch_param(mode=enabled)``; ``mode=disabled`` (one context, or no
#: HEF) appears in public user scripts that force single-context compilation (docs/hailo_facts.md,
#: "Model script commands").
SINGLE_CONTEXT = "context_switch_param(mode=disabled)"


def joint_script(stage_script: str) -> str:
    """A joined pack's model script in the Model Zoo's form: one context, then the compile-time
    lines (``JOINT_DIRECTIVES``) of its stages' script; their quantization lines were used when each
    stage was optimized and are not repeated (the joined runners are already quantized)."""
    kept = [line.strip() for line in stage_script.splitlines() if line.split("(", 1)[0].strip() in JOINT_DIRECTIVES]
    return "\n".join([SINGLE_CONTEXT, *kept]) + "\n"
