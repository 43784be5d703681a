import numpy as np
import pytest

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import FULL_SIZE_8K
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from convtasnet_hailo.plan.host_steps import AssembleBlocks
from convtasnet_hailo.plan.ops import Conv
from tests.conftest import TINY, assert_within_contract


def test_no_conv_wider_than_block_remains():
    plan = build_plan(random_model(FULL_SIZE_8K), PlanOptions(block_chan=64, fuse=False))
    for stage in plan.stages:
        for op in stage.ops:
            if isinstance(op, Conv) and op.kernel == 1 and op.groups == 1:
                assert max(op.in_channels, op.out_channels()) <= 64, stage.name


def test_bias_is_added_once_per_output_block():
    plan = build_plan(random_model(TINY), PlanOptions(block_chan=5, fuse=False))
    blocks = [s for s in plan.stages if s.block and s.block.conv_output == "tcn0_in_conv"]
    for stage in blocks:
        (conv,) = stage.ops
        assert (conv.bias is not None) == (stage.block.in_block == 0)


def test_blocks_reassemble_the_original_conv():
    model = random_model(TINY)
    plain, split = build_plan(model, PlanOptions(fuse=False)), build_plan(model, PlanOptions(block_chan=5, fuse=False))
    (conv,) = [op for op in plain.stage("bottleneck").ops]
    (assemble,) = [s for s in split.steps if isinstance(s, AssembleBlocks) and s.output == "bottleneck"]
    x = np.random.default_rng(0).standard_normal((1, conv.in_channels, 7)).astype(np.float32)
    store = {"bottleneck_norm": x}
    for step in split.steps:
        if getattr(step, "input", None) == "bottleneck_norm" or (
            hasattr(step, "block") and step.block and step.block.conv_output == "bottleneck"
        ):
            if hasattr(step, "apply"):
                store.update(step.apply(store))
            else:
                (op,) = step.ops
                w = op.weight[:, :, 0, 0]
                out = np.einsum("oc,gcf->gof", w, store[op.input])
                store[op.output] = out + (op.bias[None, :, None] if op.bias is not None else 0)
    expected = np.einsum("oc,gcf->gof", conv.weight[:, :, 0, 0], x) + conv.bias[None, :, None]
    assert_within_contract(assemble.apply(store)["bottleneck"], expected, "bottleneck")


def test_block_chan_must_be_positive():
    with pytest.raises(UserError, match="--block-chan 0"):
        build_plan(random_model(TINY), PlanOptions(block_chan=0, fuse=False))


def test_partial_sums_are_the_float64_sum_rounded_once():
    """``add_partials`` equals summing in float64 in order and rounding once, for 2 parts (plain
    float32 addition, exact by the double-rounding bound) and for 3 and 8 parts (chunked float64),
    over magnitudes 2^-30..2^30 and into a strided output."""
    import numpy as np

    from convtasnet_hailo.plan.host_steps import add_partials

    rng = np.random.default_rng(7)
    for count in (2, 3, 8):
        parts = [
            (rng.standard_normal((37, 5, 1, 300)) * 2.0 ** rng.integers(-30, 30, (37, 5, 1, 300))).astype(np.float32)
            for _ in range(count)
        ]
        expected = parts[0].astype(np.float64)
        for part in parts[1:]:
            expected += part
        out = np.full((37, 9, 1, 300), np.nan, np.float32)
        add_partials(parts, out[:, 2:7])
        np.testing.assert_array_equal(out[:, 2:7], expected.astype(np.float32))
        assert np.isnan(out[:, :2]).all() and np.isnan(out[:, 7:]).all()
