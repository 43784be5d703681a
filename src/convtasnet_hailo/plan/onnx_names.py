"""The names a stage's ONNX file gives its nodes, and the ONNX name each stage port leaves in a
compiled HEF. Import-light (no onnx): the device side binds ports to HailoRT streams with them.

A stage's ONNX graph names its inputs and outputs after the plan's ports (``export.onnx_graph``).
The Dataflow Compiler keeps ONNX names as each layer's ``original_names`` and HailoRT answers them
per stream (``HEF.get_original_names_from_vstream_name``; hailort ``hef/hef.cpp``): an input
stream carries the graph input's name, an output stream the names of the nodes its layer holds,
among them the node that writes the output tensor (docs/hailo_facts.md, "Streams").
"""

from __future__ import annotations

from .stages import Stage


def node_name(stage: Stage, index: int, op) -> str:
    """The ONNX node name of ``stage.ops[index]`` (``op``), stable across runs."""
    return f"{stage.name}/{type(op).__name__.lower()}{index}"


def port_original_names(stage: Stage) -> dict[str, str]:
    """Port -> the ONNX name a HEF keeps for it: an input port's graph input (the port's own
    name), an output port's producing node (the end node `compile` passes to the parser)."""
    names = {port.name: port.name for port in stage.inputs}
    producers = {op.output: op.output_node(node_name(stage, index, op)) for index, op in enumerate(stage.ops)}
    for port in stage.outputs:
        if port.name not in producers:
            raise ValueError(f"stage {stage.name}: no op writes its output {port.name}")
        names[port.name] = producers[port.name]
    return names
