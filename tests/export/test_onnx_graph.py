import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from convtasnet_hailo.backends.torch_stage import StageModule
from convtasnet_hailo.export.onnx_graph import OPSET, stage_to_onnx, with_symbolic_batch
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from tests.conftest import TINY, assert_within_contract


@pytest.fixture(scope="module")
def plan():
    return build_plan(random_model(TINY, seed=4), PlanOptions(fuse=False))


def test_every_stage_exports_static_nchw_h1_with_pinned_opset(plan):
    for stage in plan.stages:
        model = stage_to_onnx(stage, tile_w=12)
        assert model.opset_import[0].version == OPSET
        for value in list(model.graph.input) + list(model.graph.output):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            assert len(dims) == 4 and dims[0] == 1 and dims[2] == 1 and all(d > 0 for d in dims)


def test_export_is_deterministic_with_stable_node_names(plan):
    stage = plan.stage("tcn1_depth")
    first = stage_to_onnx(stage, 12).SerializeToString(deterministic=True)
    again = stage_to_onnx(build_plan(random_model(TINY, seed=4), PlanOptions(fuse=False)).stage("tcn1_depth"), 12)
    assert first == again.SerializeToString(deterministic=True)
    assert [n.name for n in again.graph.node] == ["tcn1_depth/conv0", "tcn1_depth/prelu1"]


def test_onnxruntime_equals_the_torch_stage_module_on_a_batch(plan):
    rng = np.random.default_rng(0)
    for stage in plan.stages:
        session = ort.InferenceSession(with_symbolic_batch(stage_to_onnx(stage, 12)).SerializeToString())
        feeds = {
            name: rng.standard_normal(shape).astype(np.float32)
            for name, shape in stage.input_shapes(12, batch=3).items()
        }
        got = session.run(None, feeds)
        with torch.no_grad():
            expected = StageModule(stage)(*[torch.from_numpy(feeds[p.name]) for p in stage.inputs])
        for g, e in zip(got, expected, strict=False):
            assert_within_contract(g, e.numpy(), stage.name)


def test_symbolic_batch_copy_leaves_the_original_static(plan):
    model = stage_to_onnx(plan.stage("encoder"), 12)
    batched = with_symbolic_batch(model)
    assert batched.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    onnx.checker.check_model(batched)
