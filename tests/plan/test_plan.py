import numpy as np
import pytest

from convtasnet_hailo.model.config import FULL_SIZE_8K, ConvTasNetConfig, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.plan.host_steps import Normalize
from convtasnet_hailo.plan.ops import Add, Conv, Mul, PRelu, Relu, Sigmoid
from convtasnet_hailo.plan.stages import Stage
from tests.conftest import TINY

HAILO_FRIENDLY_OPS = (Conv, PRelu, Relu, Sigmoid, Add, Mul)


@pytest.fixture(scope="module")
def full_plan():
    return build_plan(random_model(FULL_SIZE_8K), PlanOptions(fuse=False), PlanPath.FULL_CHAIN)


def test_every_block_and_norm_of_the_full_model_is_in_the_plan(full_plan):
    names = set(full_plan.produced_names())
    for i in range(24):
        for suffix in ("in", "in_norm", "depth", "depth_norm", "skip", "skip_sum"):
            assert f"tcn{i}_{suffix}" in names
        assert (f"tcn{i}_residual" in names) == (i < 23)  # the last residual feeds nothing
    for name in (
        "encoder",
        "bottleneck_norm",
        "bottleneck",
        "mask_score",
        "mask_output",
        "masker_output",
        "source_projector",
        "masked_rep",
        "decoder_pre",
        "decoder_head",
        "decoder_output",
        "final_output",
    ):
        assert name in names
    norms = [s for s in full_plan.steps if isinstance(s, Normalize)]
    assert len(norms) == 1 + 2 * 24 and all(n.norm is NormType.GLN for n in norms)
    assert len(full_plan.stages) == 1 + 1 + 3 * 24 + 1 + 2


def test_stages_use_only_hailo_friendly_ops_with_h1_kernels(full_plan):
    for stage in full_plan.stages:
        assert isinstance(stage, Stage)
        for op in stage.ops:
            assert isinstance(op, HAILO_FRIENDLY_OPS), (stage.name, op)
            if isinstance(op, Conv):
                assert op.weight.ndim == 4 and op.weight.shape[2] == 1 and op.weight.dtype == np.float32


def test_depthwise_halo_equals_dilation(full_plan):
    for i in range(24):
        (port,) = full_plan.stage(f"tcn{i}_depth").inputs
        d = 2 ** (i % 8)
        assert port.geometry.halo == (d, d)
    (wav_port,) = full_plan.stage("encoder").inputs
    assert (wav_port.geometry.stride, wav_port.geometry.span) == (8, 16)


def test_causal_depthwise_reads_only_the_past():
    config = ConvTasNetConfig(
        n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=1, causal=True, norm_type=NormType.CGLN
    )
    plan = build_plan(random_model(config), PlanOptions(fuse=False), PlanPath.MASKER)
    for i in range(3):
        (port,) = plan.stage(f"tcn{i}_depth").inputs
        assert port.geometry.halo == (2 * 2**i, 0)


@pytest.mark.parametrize(
    "path, first, last",
    [
        (PlanPath.DECODER, "source_projector", "final_output"),
        (PlanPath.MASKER, "bottleneck_norm", "masker_output"),
        (PlanPath.FULL_CHAIN, "encoder", "final_output"),
    ],
)
def test_paths_cover_their_part(path, first, last):
    names = build_plan(random_model(TINY), PlanOptions(fuse=False), path).produced_names()
    assert names[0] == first and names[-1] == last


def test_decoder_projection_is_the_transposed_filterbank():
    model = random_model(TINY)
    (conv,) = build_plan(model, PlanOptions(fuse=False), PlanPath.DECODER).stage("decoder_pre").ops
    filters = model.decoder.filterbank._filters.detach().numpy()  # (N, 1, L)
    np.testing.assert_array_equal(conv.weight[:, :, 0, 0], filters[:, 0, :].T)
    assert conv.bias is None


@pytest.mark.parametrize("shape", [(1, 512, 16), (2, 7, 1000), (1, 128, 1)])
def test_host_channel_norm_matches_the_models_layer(shape):
    """The host's cLN (BLAS sums over channels) against the model's own layer, within the contract."""
    import numpy as np
    import torch

    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.plan.host_steps import channel_norm, norm_layer
    from tests.conftest import assert_within_contract

    rng = np.random.default_rng(shape[1])
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(np.float32)
    gamma, beta = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    with torch.no_grad():
        expected = norm_layer(NormType.CLN, gamma, beta)(torch.from_numpy(x)).numpy()
    out = channel_norm(x, gamma, beta)
    assert out.dtype == np.float32 and out.shape == shape
    assert_within_contract(out, expected)
