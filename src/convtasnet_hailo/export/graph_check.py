"""Checks ONNX graphs against the Hailo parser rules (``hailo_rules``) before anyone compiles.

Every violation names the stage, the node, its op type and the rule; all of them are collected
before reporting, so one run shows everything to fix.
"""

from __future__ import annotations

import dataclasses

import onnx
from onnx import shape_inference

from ..plan.ops import CHANNEL_NORM_MARK
from .hailo_rules import ALLOWED_OPS, FORBIDDEN_OPS, LAYER_NORM_OPS, CheckLimits


@dataclasses.dataclass(frozen=True)
class Violation:
    stage: str
    node: str
    op: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"stage {self.stage}: node {self.node} ({self.op}) breaks rule {self.rule}: {self.detail}"


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    dims = []
    for dim in value.type.tensor_type.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None))
    return dims


def _check_tensor_shape(stage: str, value: onnx.ValueInfoProto, where: str) -> list[Violation]:
    dims = _dims(value)
    out = []
    if any(not isinstance(d, int) or d <= 0 for d in dims):
        out.append(Violation(stage, value.name, where, "static_shapes", f"shape {dims} is not fully static"))
    if len(dims) != 4:
        out.append(
            Violation(
                stage,
                value.name,
                where,
                "rank4_nchw",
                f"rank {len(dims)} (shape {dims}); Hailo "
                "parses NCHW with H=1 (3-D tensors raise UnsupportedConv3DError)",
            )
        )
    elif dims[2] != 1:
        out.append(Violation(stage, value.name, where, "height_1", f"H={dims[2]} (shape {dims}); stages keep H=1"))
    return out


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _check_conv(stage: str, node: onnx.NodeProto, weights: dict, shapes: dict, limits: CheckLimits) -> list[Violation]:
    out = []
    weight = weights.get(node.input[1])
    kernel = list(_attribute(node, "kernel_shape", weight.dims[2:] if weight is not None else []))
    dilations = list(_attribute(node, "dilations", [1] * len(kernel)))
    v = lambda rule, detail: Violation(stage, node.name, node.op_type, rule, detail)  # noqa: E731
    if len(kernel) != 2 or kernel[0] != 1:
        out.append(v("kernel_1xK", f"kernel {kernel}; stages use (1, K) kernels"))
        return out
    if limits.max_kernel is not None and kernel[1] > limits.max_kernel:
        out.append(v("max_kernel", f"kernel width {kernel[1]} > {limits.max_kernel}"))
    if limits.max_dilation is not None and max(dilations) > limits.max_dilation:
        out.append(v("max_dilation", f"dilation {max(dilations)} > {limits.max_dilation}"))
    if weight is not None and limits.max_channels is not None:
        groups = _attribute(node, "group", 1)
        c_out, c_in = weight.dims[0], weight.dims[1] * groups
        if groups == 1 and max(c_out, c_in) > limits.max_channels:
            out.append(
                v(
                    "max_channels",
                    f"{c_in} -> {c_out} channels > {limits.max_channels} (export with --block-chan to split it)",
                )
            )
    out_shape = shapes.get(node.output[0])
    if (
        limits.max_width is not None
        and out_shape
        and isinstance(out_shape[-1], int)
        and out_shape[-1] > limits.max_width
    ):
        out.append(v("max_width", f"output width {out_shape[-1]} > {limits.max_width}"))
    return out


def check_model(model: onnx.ModelProto, stage: str, limits: CheckLimits = CheckLimits()) -> list[Violation]:
    """All rule violations of one ONNX model (named ``stage`` in messages)."""
    violations: list[Violation] = []
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception as exc:  # a malformed graph: report, keep checking what we can
        violations.append(Violation(stage, model.graph.name, "graph", "shape_inference", str(exc).splitlines()[0]))
        inferred = model
    graph = inferred.graph
    for value in graph.input:
        violations += _check_tensor_shape(stage, value, "graph input")
    for value in graph.output:
        violations += _check_tensor_shape(stage, value, "graph output")
    for value in graph.value_info:
        violations += [x for x in _check_tensor_shape(stage, value, "intermediate") if x.rule != "static_shapes"]
    weights = {init.name: init for init in graph.initializer}
    shapes = {v.name: _dims(v) for v in list(graph.value_info) + list(graph.output)}
    for node in graph.node:
        if _in_channel_norm(node):
            continue
        if node.op_type not in ALLOWED_OPS:
            reason = FORBIDDEN_OPS.get(node.op_type, "not in the allow-list of ops the Hailo parser accepts")
            violations.append(Violation(stage, node.name or "(unnamed)", node.op_type, "allowed_ops", reason))
        elif node.op_type == "Conv":
            violations += _check_conv(stage, node, weights, shapes, limits)
    return violations


def _in_channel_norm(node) -> bool:
    """A node of a per-frame layer norm (``LAYER_NORM_OPS``); a ReduceMean only over channels."""
    if node.op_type not in LAYER_NORM_OPS or CHANNEL_NORM_MARK not in node.name:
        return False
    if node.op_type == "ReduceMean":
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        return axes == [1]
    return True


def check_export(directory, limits: CheckLimits = CheckLimits()) -> list[Violation]:
    """Checks every stage file of an export folder: present, unchanged since export (sha256),
    and within the Hailo rules."""
    from .manifest import check_stage_ports, read_manifest, verify_stage_file

    manifest = read_manifest(directory)
    violations: list[Violation] = []
    for entry in manifest.stages:
        path = verify_stage_file(directory, entry)
        model = load_stage(path, entry.name)
        check_stage_ports(
            entry, path, _graph_ports(model.graph.input, model.graph.initializer), _graph_ports(model.graph.output)
        )
        violations += check_model(model, entry.name, limits)
    if manifest.device_plan is not None:
        from .manifest import read_device_plan

        read_device_plan(directory, manifest)  # hashed, range-checked and matched with the stages
    return violations


def _graph_ports(values, initializers=()) -> list[tuple[str, tuple]]:
    """(name, shape) of a graph's inputs or outputs (initializers listed as inputs left out); a
    dimension without a value is its symbolic name."""
    constant = {init.name for init in initializers}
    return [
        (v.name, tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim))
        for v in values
        if v.name not in constant
    ]


def load_stage(path, stage: str):
    """The ONNX model of a stage file, its weights inside it (a stage never names external data:
    a file that does, or that is cut short, is refused in one line rather than read from elsewhere)."""
    from ..model.onnx_file import load_self_contained

    return load_self_contained(path, f"stage {stage}: {path}", "re-export")
