"""One test per rule: inject the forbidden pattern into a real stage graph, expect the check to
name the stage, node, op and rule."""

import onnx
import pytest
from onnx import helper

from convtasnet_hailo.export.graph_check import check_model
from convtasnet_hailo.export.hailo_rules import ALLOWED_OPS, FORBIDDEN_OPS, CheckLimits
from convtasnet_hailo.export.onnx_graph import stage_to_onnx
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from tests.conftest import TINY


@pytest.fixture(scope="module")
def plan():
    return build_plan(random_model(TINY), PlanOptions(fuse=False))


def _stage_model(plan, name="tcn0_in", tile_w=16):
    return stage_to_onnx(plan.stage(name), tile_w)


def _append_node(model, op_type, extra_inputs=(), **attrs):
    """Appends ``op_type`` after the graph's output and makes its result the new output."""
    graph = model.graph
    old = graph.output[0]
    node = helper.make_node(op_type, [old.name, *extra_inputs], ["injected_out"], name="injected/node", **attrs)
    graph.node.append(node)
    new_out = helper.make_tensor_value_info("injected_out", onnx.TensorProto.FLOAT, None)
    graph.output.remove(old)
    graph.output.append(new_out)
    return model


def test_clean_stages_pass_every_rule(plan):
    for stage in plan.stages:
        assert check_model(stage_to_onnx(stage, 16), stage.name) == []


def test_rejects_injected_reshape_naming_stage_and_node(plan):
    model = _stage_model(plan)
    model.graph.initializer.append(
        onnx.numpy_helper.from_array(__import__("numpy").array([1, 12, 16], "int64"), "shape")
    )
    violations = check_model(_append_node(model, "Reshape", ["shape"]), "tcn0_in")
    messages = [str(v) for v in violations]
    assert any(
        "stage tcn0_in: node injected/node (Reshape) breaks rule allowed_ops: UnsupportedShuffleLayerError" in m
        for m in messages
    )
    assert any(v.rule == "rank4_nchw" for v in violations)  # the reshaped output is 3-D


@pytest.mark.parametrize(
    "op_type, attrs",
    [("Transpose", {"perm": [0, 1, 3, 2]}), ("Flatten", {}), ("Softmax", {"axis": 1}), ("ReduceMean", {"keepdims": 1})],
)
def test_rejects_ops_outside_the_allow_list(plan, op_type, attrs):
    violations = check_model(_append_node(_stage_model(plan), op_type, **attrs), "tcn0_in")
    assert any(v.rule == "allowed_ops" and v.op == op_type and v.node == "injected/node" for v in violations)


def test_rejects_dynamic_shapes(plan):
    model = _stage_model(plan)
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "width"
    assert [v.rule for v in check_model(model, "tcn0_in")] == ["static_shapes"]


def test_rejects_height_other_than_one(plan):
    model = _stage_model(plan)
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[2].dim_value = 2
    assert "height_1" in {v.rule for v in check_model(model, "tcn0_in")}


def test_rejects_square_kernels(plan):
    model = _stage_model(plan, "tcn1_depth")
    conv = model.graph.node[0]
    for attribute in conv.attribute:
        if attribute.name == "kernel_shape":
            attribute.ints[:] = [3, 3]
    assert any(v.rule == "kernel_1xK" for v in check_model(model, "tcn1_depth"))


@pytest.mark.parametrize(
    "limits, stage, rule",
    [
        (CheckLimits(max_kernel=2), "tcn0_depth", "max_kernel"),
        (CheckLimits(max_dilation=1), "tcn1_depth", "max_dilation"),
        (CheckLimits(max_channels=8), "tcn0_in", "max_channels"),
        (CheckLimits(max_width=8), "tcn0_in", "max_width"),
    ],
)
def test_configurable_limits(plan, limits, stage, rule):
    violations = check_model(_stage_model(plan, stage), stage, limits)
    assert [v.rule for v in violations] == [rule] and violations[0].stage == stage


def test_every_allowed_and_forbidden_op_names_its_source():
    assert all("docs/hailo_facts.md" in source for source in ALLOWED_OPS.values())
    assert set(ALLOWED_OPS).isdisjoint(FORBIDDEN_OPS)
