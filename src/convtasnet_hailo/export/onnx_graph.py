"""One generic converter: a :class:`Stage` -> an ONNX model with static NCHW shapes (H=1).

Written directly from the stage IR with ``onnx.helper`` (no tracing): the graph holds exactly
the stage's ops, node and initializer names are derived from the plan and stable across runs,
and the bytes are deterministic, so a file's sha256 identifies its content.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ..plan.onnx_names import node_name
from ..plan.stages import Stage

#: Pinned opset: every op used (Conv, LeakyRelu, Relu, Sigmoid, Add, Mul) is stable since opset 7-13.
OPSET = 13
#: ONNX IR version matching opset 13 (onnx 1.8); keeps the files readable by older parsers.
IR_VERSION = 7
PRODUCER = "convtasnet-hailo"


def _value_info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def stage_to_onnx(stage: Stage, tile_w: int, batch: int = 1) -> onnx.ModelProto:
    """The ONNX model of ``stage`` for tiles of ``tile_w`` output frames.

    Shape: inputs (batch, C, 1, geometry.tile_input_width(tile_w)) -> outputs (batch, C, 1, tile_w).
    """
    channels = stage.value_channels()
    nodes, initializers = [], []
    for index, op in enumerate(stage.ops):
        op_nodes, op_initializers = op.onnx_nodes(node_name(stage, index, op), channels)
        nodes += op_nodes
        initializers += op_initializers
    graph = helper.make_graph(
        nodes,
        stage.name,
        [_value_info(n, s) for n, s in stage.input_shapes(tile_w, batch).items()],
        [_value_info(n, s) for n, s in stage.output_shapes(tile_w, batch).items()],
        initializer=initializers,
    )
    model = helper.make_model(graph, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = stage.role
    onnx.checker.check_model(model, full_check=True)
    return model


def with_symbolic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs/outputs take any batch size (dim 0 named ``batch``).

    Every op in a stage is batch-independent, so a runtime may feed all tiles at once; the
    file on disk keeps the static batch of 1 that the Hailo parser needs.
    """
    batched = onnx.ModelProto()
    batched.CopyFrom(model)
    for value in list(batched.graph.input) + list(batched.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del batched.graph.value_info[:]
    return batched
